// ws_resume.js CHANNEL URL [URL...] — a WebSocket client (npm's ws) that
// subscribes to CHANNEL and, whenever the connection ends, reconnects to the
// next URL (round robin, after RETRY_MS, default 200) and subscribes again
// with "since": {CHANNEL: {epoch, offset}} of the last event it got (or,
// before any, the position `subscribed` gave).
// Prints one summary line per message (summary.js) and "open" per connection.
'use strict';
const WebSocket = require('ws');
const { summarize } = require('./summary');

const channel = process.argv[2];
const urls = process.argv.slice(3);
const retryMs = parseInt(process.env.RETRY_MS || '200', 10);
let pos = null;
let k = 0;

function say(line) { process.stdout.write(line + '\n'); }

function connect() {
  const ws = new WebSocket(urls[k++ % urls.length]);
  let again = false;
  const retry = () => { if (!again) { again = true; setTimeout(connect, retryMs); } };
  ws.on('open', () => {
    say('open');
    const sub = { type: 'subscribe', channels: [channel] };
    if (pos) sub.since = { [channel]: pos };
    ws.send(JSON.stringify(sub));
  });
  ws.on('message', (data) => {
    let o;
    try { o = JSON.parse(data.toString('utf8')); } catch (e) { return say('BAD json'); }
    if (o.channel === channel && typeof o.epoch === 'string' && typeof o.offset === 'number')
      pos = { epoch: o.epoch, offset: o.offset };
    // a fresh start on the channel: where it begins, so that a reconnect
    // before its first event misses nothing
    if ((o.type === 'subscribed' || o.type === 'connected') && o.positions && o.positions[channel])
      pos = o.positions[channel];
    say(summarize(o));
  });
  ws.on('close', retry);
  ws.on('error', retry);
  ws.on('unexpected-response', (req, res) => { res.resume(); retry(); });
}

process.on('SIGTERM', () => process.exit(0));
connect();
