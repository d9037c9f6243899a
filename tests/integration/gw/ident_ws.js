// ident_ws.js URL — a WebSocket test client (npm's ws) for the identity
// tests: like ws_client.js (stdin lines are sent as text messages, one
// summary line per received message), but the environment variable
// BEARER, when set, is sent as "Authorization: Bearer <BEARER>" on the
// upgrade, and the close line carries the reason: "close <code> <reason>".
'use strict';
const WebSocket = require('ws');
const readline = require('readline');
const { summarize } = require('./summary');

const url = process.argv[2];
const headers = process.env.BEARER ? { Authorization: 'Bearer ' + process.env.BEARER } : {};
const ws = new WebSocket(url, 'flagcast.json', { headers });
const pending = [];
let open = false;

function say(line) { process.stdout.write(line + '\n'); }

ws.on('open', () => {
  open = true;
  say('open ' + (ws.protocol || '-'));
  for (const l of pending.splice(0)) ws.send(l);
});
ws.on('message', (data) => {
  let o;
  try { o = JSON.parse(data.toString('utf8')); } catch (e) { return say('BAD undecodable frame'); }
  say(summarize(o));
  if (o.type === 'error') say('errmsg ' + o.code + ' ' + o.message);
});
ws.on('close', (code, reason) => { say('close ' + code + ' ' + reason.toString()); process.exit(0); });
ws.on('error', (e) => { say('error-event ' + e.message); });
ws.on('unexpected-response', (req, res) => { say('http ' + res.statusCode); process.exit(0); });

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (l) => { if (!l.trim()) return; if (open) ws.send(l); else pending.push(l); });
rl.on('close', () => { setTimeout(() => { ws.close(1000); }, 100); });
