// ws_positions.js URL FORMAT SINCE-JSON CHANNEL... — one WebSocket session:
// subscribes to the channels (with "since" when SINCE-JSON is not "-"),
// prints the `subscribed` reply's "positions" as JSON on the first line,
// then one summary line per message (a snapshot with the position it
// carries: "snapshot KEYS at flags/EPOCH/OFFSET"), for WAIT_MS (default 1500) ms.
// FORMAT: json or msgpack (subprotocol flagcast.msgpack, binary frames).
'use strict';
const WebSocket = require('ws');
const { encode, decode } = require('@msgpack/msgpack');
const { summarize } = require('./summary');

const [url, fmt, sinceArg, ...channels] = process.argv.slice(2);
const mp = fmt === 'msgpack';
const ws = new WebSocket(url, mp ? ['flagcast.msgpack'] : []);
const say = (l) => process.stdout.write(l + '\n');
ws.on('open', () => {
  const sub = { type: 'subscribe', channels };
  if (sinceArg !== '-') sub.since = JSON.parse(sinceArg);
  ws.send(mp ? encode(sub) : JSON.stringify(sub));
  setTimeout(() => ws.close(), parseInt(process.env.WAIT_MS || '1500', 10));
});
ws.on('message', (data, isBinary) => {
  const o = mp ? decode(data) : JSON.parse(data.toString('utf8'));
  if (o.type === 'subscribed') say(JSON.stringify(o.positions === undefined ? null : o.positions));
  else if (o.type === 'snapshot') say(summarize(o) + ' at ' + o.channel + '/' + o.epoch + '/' + o.offset);
  else if (o.type !== 'connected') say(summarize(o));
});
ws.on('error', (e) => { say('error ' + e.message); process.exit(1); });
ws.on('close', () => process.exit(0));
