// reconnect.js — reconnecting SSE and WS clients, the client half of the
// test harness (tests/integration/harness.sh starts the daemons). Used by
// gw/scale_clients.js (test_scale_haproxy.sh) and tests/compose/clients.js
// (make compose-test), which differ only in what they subscribe to and
// what they print.
//
// SSE clients behave like a browser EventSource: they honour `retry:`, send
// Last-Event-ID (the last `id:` seen) when they reconnect, and reconnect
// after the stream ends. WS clients behave like an SDK: after a close they
// reconnect (after 100-400 ms) and subscribe again with "since" of the last
// event they printed on each channel.
//
// Every line printed is "<ms since epoch> <name> <what>":
//   open                 stream established (SSE 200 / WS subscribed)
//   refused              (opts.refused) SSE 200 carrying X-Flagcast-Refused
//   status <code>        SSE answer other than 200, WS handshake refused
//   retry <ms>           (opts.retryLines) an SSE retry: hint
//   <describe(event)>    an event (SSE data or WS message) describe() names
//   end | close <code>   SSE stream ended / WS closed by the server
//   error <text>         connection error (then reconnects); with
//                        opts.wsErrors also a WS {"type":"error"} message
'use strict';
const http = require('http');
const WebSocket = require('ws');

function say(name, what) { process.stdout.write(Date.now() + ' ' + name + ' ' + what + '\n'); }

// opts: base (http://host:port), channels (array), describe(o) -> line or
// null, and the flags refused, retryLines, wsErrors (see above).
function sseClient(name, opts) {
  let lastId = null;
  let retry = 1000;

  function reconnect() { setTimeout(connect, retry); }

  function connect() {
    const headers = { Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const req = http.get(opts.base + '/api/v1/realtime/sse?channels=' +
      opts.channels.map(encodeURIComponent).join(','), { headers, agent: false });
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        say(name, 'status ' + res.statusCode);
        res.resume();
        res.on('end', reconnect);
        return;
      }
      if (opts.refused && res.headers['x-flagcast-refused']) say(name, 'refused');
      else say(name, 'open');
      res.setEncoding('utf8');
      let pending = '';
      let ev = { id: null, data: [] };
      res.on('data', (chunk) => {
        pending += chunk;
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).replace(/\r$/, '');
          pending = pending.slice(nl + 1);
          if (line === '') {
            if (ev.id !== null) lastId = ev.id;
            if (ev.data.length) {
              try {
                const d = opts.describe(JSON.parse(ev.data.join('\n')));
                if (d) say(name, d);
              } catch (e) { say(name, 'error bad-json'); }
            }
            ev = { id: null, data: [] };
            continue;
          }
          if (line[0] === ':') continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'id') ev.id = value;
          else if (field === 'data') ev.data.push(value);
          else if (field === 'retry' && /^\d+$/.test(value)) {
            retry = parseInt(value, 10);
            if (opts.retryLines) say(name, 'retry ' + retry);
          }
        }
      });
      res.on('end', () => { say(name, 'end'); reconnect(); });
      res.on('error', () => {});
    });
    req.on('error', (e) => { say(name, 'error ' + e.code); reconnect(); });
  }
  connect();
}

function wsClient(name, opts) {
  const since = {};

  function connect() {
    const ws = new WebSocket(opts.base.replace(/^http/, 'ws') + '/ws', 'flagcast.json');
    let again = false;   // one reconnect per connection, whatever ends it
    const retry = (ms) => { if (!again) { again = true; setTimeout(connect, ms); } };
    ws.on('open', () => {
      const sub = { type: 'subscribe', channels: opts.channels };
      if (Object.keys(since).length) sub.since = since;
      ws.send(JSON.stringify(sub));
    });
    ws.on('message', (data) => {
      let o;
      try { o = JSON.parse(data.toString('utf8')); } catch (e) { return say(name, 'error bad-json'); }
      if (o.type === 'subscribed') return say(name, 'open');
      if (o.type === 'error' && opts.wsErrors)
        return say(name, 'error ' + (o.code || o.error || JSON.stringify(o)));
      const d = opts.describe(o);
      if (d) {
        since[o.channel] = { epoch: o.epoch, offset: o.offset };
        say(name, d);
      }
    });
    ws.on('unexpected-response', (req, res) => {
      say(name, 'status ' + res.statusCode);
      res.resume();
      req.destroy();
      retry(300);
    });
    ws.on('close', (code) => {
      say(name, 'close ' + code);
      retry(100 + Math.floor(Math.random() * 300));
    });
    ws.on('error', (e) => { say(name, 'error ' + (e.code || e.message)); });
  }
  connect();
}

// Starts nsse SSE and nws WS clients named <prefix>sse0.., <prefix>ws0..,
// and exits 0 on SIGTERM.
function run(nsse, nws, prefix, opts) {
  for (let i = 0; i < nsse; i++) sseClient(prefix + 'sse' + i, opts);
  for (let i = 0; i < nws; i++) wsClient(prefix + 'ws' + i, opts);
  process.on('SIGTERM', () => process.exit(0));
}

module.exports = { say, sseClient, wsClient, run };
