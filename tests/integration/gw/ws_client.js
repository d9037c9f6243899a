// ws_client.js URL [SUBPROTOCOL] — a WebSocket test client (npm's ws).
// Reads lines from stdin: each is sent as one message (for flagcast.msgpack
// a JSON line is encoded as a msgpack binary frame; a line starting with
// "RAW " sends the rest as a text frame unchanged, "BIN " as a binary frame,
// "BIG n" sends a text frame of n bytes). Prints one summary line per
// received message (summary.js), "open <protocol>" once connected, and
// "close <code>" when the server closes, "ping" for each ping the server
// sends; exits on close or stdin EOF. With NOPONG=1 in the environment it
// does not answer pings (a dead-but-connected client). With RAW=1 each
// message is also printed whole, as "raw <JSON>".
'use strict';
const WebSocket = require('ws');
const readline = require('readline');
const { summarize } = require('./summary');
const { encode, decode } = require('@msgpack/msgpack');

const url = process.argv[2];
const proto = process.argv[3];
const opts = process.env.NOPONG === '1' ? { autoPong: false } : {};
const ws = proto ? new WebSocket(url, proto, opts) : new WebSocket(url, opts);
const pending = [];
let open = false;

function say(line) { process.stdout.write(line + '\n'); }

function send(line) {
  if (line.startsWith('RAW ')) return ws.send(line.slice(4));
  if (line.startsWith('BIN ')) return ws.send(Buffer.from(line.slice(4)), { binary: true });
  if (line.startsWith('BIG ')) return ws.send('x'.repeat(parseInt(line.slice(4), 10)));
  if (proto === 'flagcast.msgpack') return ws.send(encode(JSON.parse(line)), { binary: true });
  ws.send(line);
}

ws.on('open', () => {
  open = true;
  say('open ' + (ws.protocol || '-'));
  for (const l of pending.splice(0)) send(l);
});
ws.on('message', (data, isBinary) => {
  let o;
  try {
    o = isBinary ? decode(data) : JSON.parse(data.toString('utf8'));
  } catch (e) {
    return say('BAD undecodable ' + (isBinary ? 'binary' : 'text') + ' frame');
  }
  if (proto === 'flagcast.msgpack' && !isBinary) return say('BAD text frame on msgpack');
  if (proto !== 'flagcast.msgpack' && isBinary) return say('BAD binary frame on json');
  say(summarize(o));
  if (process.env.RAW === '1') say('raw ' + JSON.stringify(o));
});
ws.on('ping', () => say('ping'));
ws.on('close', (code) => { say('close ' + code); process.exit(0); });
ws.on('error', (e) => { say('error-event ' + e.message); });
ws.on('unexpected-response', (req, res) => { say('http ' + res.statusCode); process.exit(0); });

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (l) => { if (!l.trim()) return; if (open) send(l); else pending.push(l); });
rl.on('close', () => { setTimeout(() => { ws.close(1000); }, 100); });
