// scale_clients.js BASEURL NSSE NWS CHANNEL — many reconnecting clients in
// one process, for the scale-out test (test_scale_haproxy.sh).
//
// SSE clients behave like a browser EventSource: they honour `retry:`, send
// Last-Event-ID (the last `id:` seen) when they reconnect, and reconnect
// after the stream ends. WS clients behave like an SDK: subscribe to
// CHANNEL, and after a close reconnect (after 100-400 ms) and subscribe
// again with "since" {CHANNEL: {epoch, offset}} of the last message seen.
// Every client subscribes to CHANNEL only.
//
// Output, one line each, prefixed by the client's name (sse0.., ws0..) and
// the time in ms since the epoch:
//   <t> <name> open                 stream established (SSE 200 / WS subscribed)
//   <t> <name> status <code>        SSE answer other than 200, WS handshake refused
//   <t> <name> retry <ms>           SSE retry: hint
//   <t> <name> msg <seq>            a message on CHANNEL whose data is {"seq":N}
//   <t> <name> end                  SSE stream ended
//   <t> <name> close <code>         WS closed by the server
//   <t> <name> error <text>         connection error (then reconnects)
// Runs until SIGTERM.
'use strict';
const http = require('http');
const WebSocket = require('ws');

const base = process.argv[2];
const nsse = parseInt(process.argv[3], 10);
const nws = parseInt(process.argv[4], 10);
const channel = process.argv[5];

function say(name, what) { process.stdout.write(Date.now() + ' ' + name + ' ' + what + '\n'); }

function sseClient(name) {
  let lastId = null;
  let retry = 1000;

  function reconnect() { setTimeout(connect, retry); }

  function connect() {
    const headers = { Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const req = http.get(base + '/api/v1/realtime/sse?channels=' + encodeURIComponent(channel),
      { headers, agent: false });
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        say(name, 'status ' + res.statusCode);
        res.resume();
        res.on('end', reconnect);
        return;
      }
      say(name, 'open');
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
                const o = JSON.parse(ev.data.join('\n'));
                if (o.channel === channel && o.data && typeof o.data.seq === 'number') say(name, 'msg ' + o.data.seq);
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
          else if (field === 'retry' && /^\d+$/.test(value)) { retry = parseInt(value, 10); say(name, 'retry ' + retry); }
        }
      });
      res.on('end', () => { say(name, 'end'); reconnect(); });
      res.on('error', () => {});
    });
    req.on('error', (e) => { say(name, 'error ' + e.code); reconnect(); });
  }
  connect();
}

function wsClient(name) {
  let since = null;

  function connect() {
    const ws = new WebSocket(base.replace(/^http/, 'ws') + '/ws', 'flagcast.json');
    let again = false;   // one reconnect per connection, whatever ends it
    const retry = (ms) => { if (!again) { again = true; setTimeout(connect, ms); } };
    ws.on('open', () => {
      const sub = { type: 'subscribe', channels: [channel] };
      if (since) sub.since = { [channel]: since };
      ws.send(JSON.stringify(sub));
    });
    ws.on('message', (data) => {
      let o;
      try { o = JSON.parse(data.toString('utf8')); } catch (e) { return say(name, 'error bad-json'); }
      if (o.type === 'subscribed') say(name, 'open');
      else if (o.channel === channel && o.data && typeof o.data.seq === 'number') {
        since = { epoch: o.epoch, offset: o.offset };
        say(name, 'msg ' + o.data.seq);
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

for (let i = 0; i < nsse; i++) sseClient('sse' + i);
for (let i = 0; i < nws; i++) wsClient('ws' + i);
process.on('SIGTERM', () => process.exit(0));
