// clients.js BASEURL NSSE NWS CHANNEL PREFIX — reconnecting clients through
// the balancer for tests/compose/run.sh. Each subscribes to the flags channel
// and to CHANNEL.
//
// SSE clients behave like a browser EventSource: they honour `retry:`, send
// Last-Event-ID (the last `id:` seen) when they reconnect, and reconnect
// after the stream ends. WS clients behave like an SDK: after a close they
// reconnect (after 100-400 ms) and subscribe again with "since" of the last
// event seen on each channel.
//
// Output, one line each: <ms since epoch> <name> <what>, names PREFIX-sse0..,
// PREFIX-ws0..:
//   open                        stream established (SSE 200 / WS subscribed)
//   status <code>               SSE answer other than 200, WS handshake refused
//   msg <seq> <epoch> <offset>  a message on CHANNEL whose data is {"seq":N}
//   flag <key> <type> <version> <epoch> <offset>   a flag event
//   end | close <code>          SSE stream ended / WS closed by the server
//   error <text>                connection error (then reconnects)
// Runs until SIGTERM.
'use strict';
const http = require('http');
const WebSocket = require('ws');

const [base, nsseArg, nwsArg, channel, prefix] = process.argv.slice(2);
const nsse = parseInt(nsseArg, 10);
const nws = parseInt(nwsArg, 10);

function say(name, what) { process.stdout.write(Date.now() + ' ' + name + ' ' + what + '\n'); }

// one event object (SSE data or WS message) -> an output line, or null
function describe(o) {
  if (o.channel === channel && o.data && typeof o.data.seq === 'number')
    return 'msg ' + o.data.seq + ' ' + o.epoch + ' ' + o.offset;
  if (o.channel === 'flags' && typeof o.type === 'string' && o.type.startsWith('flag.')) {
    const v = o.data && o.data.version !== undefined ? o.data.version : (o.flag && o.flag.version);
    return 'flag ' + o.flagKey + ' ' + o.type + ' ' + v + ' ' + o.epoch + ' ' + o.offset;
  }
  return null;
}

function sseClient(name) {
  let lastId = null;
  let retry = 1000;

  function reconnect() { setTimeout(connect, retry); }

  function connect() {
    const headers = { Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const req = http.get(base + '/api/v1/realtime/sse?channels=flags,' + encodeURIComponent(channel),
      { headers, agent: false });
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        say(name, 'status ' + res.statusCode);
        res.resume();
        res.on('end', reconnect);
        return;
      }
      if (res.headers['x-flagcast-refused']) say(name, 'refused');
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
                const d = describe(JSON.parse(ev.data.join('\n')));
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
          else if (field === 'retry' && /^\d+$/.test(value)) retry = parseInt(value, 10);
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
  const since = {};

  function connect() {
    const ws = new WebSocket(base.replace(/^http/, 'ws') + '/ws', 'flagcast.json');
    let again = false;   // one reconnect per connection, whatever ends it
    const retry = (ms) => { if (!again) { again = true; setTimeout(connect, ms); } };
    ws.on('open', () => {
      const sub = { type: 'subscribe', channels: ['flags', channel] };
      if (Object.keys(since).length) sub.since = since;
      ws.send(JSON.stringify(sub));
    });
    ws.on('message', (data) => {
      let o;
      try { o = JSON.parse(data.toString('utf8')); } catch (e) { return say(name, 'error bad-json'); }
      if (o.type === 'subscribed') return say(name, 'open');
      if (o.type === 'error') return say(name, 'error ' + (o.code || o.error || JSON.stringify(o)));
      const d = describe(o);
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

for (let i = 0; i < nsse; i++) sseClient(prefix + '-sse' + i);
for (let i = 0; i < nws; i++) wsClient(prefix + '-ws' + i);
process.on('SIGTERM', () => process.exit(0));
