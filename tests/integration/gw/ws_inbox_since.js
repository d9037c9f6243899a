// ws_inbox_since.js URL PUBLISH-CMD — a WebSocket client with a token (in
// URL): on `connected` it keeps the inbox positions, runs PUBLISH-CMD (sh)
// so that a message arrives live, then subscribes to its inboxes with those
// positions as `since` (what a client that reconnects does) and runs
// PUBLISH-CMD again. Prints one line per message: "message CHANNEL OFFSET".
'use strict';
const WebSocket = require('ws');
const { execSync } = require('child_process');
const [url, cmd] = process.argv.slice(2);
const ws = new WebSocket(url);
let pos = null, step = 0;
ws.on('message', (d) => {
  const o = JSON.parse(d.toString('utf8'));
  if (o.type === 'connected') {
    pos = o.positions || {};
    execSync(cmd);
  } else if (o.type === 'message') {
    console.log('message ' + o.channel + ' ' + o.offset);
    if (step++ === 0)
      ws.send(JSON.stringify({ type: 'subscribe', channels: Object.keys(pos), since: pos }));
  } else if (o.type === 'subscribed') {
    execSync(cmd);
    setTimeout(() => ws.close(), 800);
  } else if (o.type === 'error') {
    console.log('error ' + o.code + ' ' + o.message);
  }
});
ws.on('close', () => process.exit(0));
ws.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
