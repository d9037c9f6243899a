// ws_eval.js URL PROTOCOL — a WebSocket client (npm's ws) for the
// `evaluate` tests: each stdin line (a JSON object) is sent in PROTOCOL's
// encoding (flagcast.json: a text frame; flagcast.msgpack: the object as
// a msgpack binary frame), one at a time; the reply to it (the first
// message that is not `connected` / `subscribed`) is printed as one JSON
// line. BEARER, when set, goes on the upgrade as Authorization: Bearer.
'use strict';
const WebSocket = require('ws');
const readline = require('readline');
const { encode, decode } = require('@msgpack/msgpack');

const [url, proto] = process.argv.slice(2);
const mp = proto === 'flagcast.msgpack';
const headers = process.env.BEARER ? { Authorization: 'Bearer ' + process.env.BEARER } : {};
const lines = [];
let ws, waiting = false, inputDone = false;

function next() {
  if (waiting) return;
  if (lines.length === 0) { if (inputDone) ws.close(1000); return; }
  const o = JSON.parse(lines.shift());
  waiting = true;
  ws.send(mp ? encode(o) : JSON.stringify(o));
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (l) => { if (l.trim()) lines.push(l); });
rl.on('close', () => {
  inputDone = true;
  ws = new WebSocket(url, proto, { headers });
  ws.on('open', next);
  ws.on('message', (data, binary) => {
    if (binary !== mp) { process.stdout.write('BAD frame kind\n'); process.exit(1); }
    const o = mp ? decode(data) : JSON.parse(data.toString('utf8'));
    if (o.type === 'connected' || o.type === 'subscribed') return;
    process.stdout.write(JSON.stringify(o) + '\n');
    waiting = false;
    next();
  });
  ws.on('close', () => process.exit(0));
  ws.on('error', (e) => { process.stdout.write('error-event ' + e.message + '\n'); process.exit(1); });
});
