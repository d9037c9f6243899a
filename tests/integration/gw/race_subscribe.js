// race_subscribe.js GW_URL PUB_URL TOKEN N — the subscribe race (issue 9.1).
// N times over SSE and N times over WS: open a stream on a channel the
// gateway has never subscribed, publish to it the instant the gateway
// acknowledges (SSE `event: connection`, WS `subscribed`), and require the
// message to arrive. Prints "sse ok/N ws ok/N" and exits 1 on any loss.
'use strict';
const http = require('http');
const WebSocket = require('ws');

const [gw, pub, token, nArg] = process.argv.slice(2);
const N = parseInt(nArg || '30', 10);
const run = `${process.pid}-${Date.now()}`;

function publish(ch, m) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ data: { m } });
    const req = http.request(`${pub}/api/v1/channels/${ch}/messages`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    }, (res) => { res.resume(); res.on('end', () => (res.statusCode < 300 ? resolve() : reject(new Error(`publish ${res.statusCode}`)))); });
    req.on('error', reject);
    req.end(body);
  });
}

function sseTry(i) {
  const ch = `race.sse.${run}.${i}`;
  return new Promise((resolve) => {
    let buf = '', published = false, done = false;
    const finish = (ok) => { if (done) return; done = true; clearTimeout(t); req.destroy(); if (!ok) console.error(`sse ${ch}: ${published ? 'acknowledged, message lost' : 'never acknowledged'}`); resolve(ok); };
    const t = setTimeout(() => finish(false), 3000);
    const req = http.get(`${gw}/api/v1/realtime/sse?channels=${ch}`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        if (!published && buf.includes('event: connection')) {
          published = true;
          publish(ch, i).catch(() => finish(false));
        }
        if (buf.includes(`"m":${i}}`)) finish(true);
      });
    });
    req.on('error', () => finish(false));
  });
}

function wsTry(i) {
  const ch = `race.ws.${run}.${i}`;
  return new Promise((resolve) => {
    let done = false, acked = false;
    const ws = new WebSocket(`${gw.replace(/^http/, 'ws')}/ws`, 'flagcast.json');
    const finish = (ok) => { if (done) return; done = true; clearTimeout(t); ws.terminate(); if (!ok) console.error(`ws ${ch}: ${acked ? 'acknowledged, message lost' : 'never acknowledged'}`); resolve(ok); };
    const t = setTimeout(() => finish(false), 3000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', channels: [ch] })));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.type === 'subscribed' && (m.channels || []).includes(ch)) acked = true, publish(ch, i).catch(() => finish(false));
      if (m.type === 'message' && m.channel === ch) finish(true);
    });
    ws.on('error', () => finish(false));
  });
}

(async () => {
  // tries run CONC at a time (the race needs the gateway a little busy)
  const conc = parseInt(process.env.CONC || '8', 10);
  let sse = 0, ws = 0;
  for (let i = 0; i < N; i += conc) {
    const batch = [];
    for (let k = i; k < Math.min(N, i + conc); k++) {
      batch.push(sseTry(k).then((ok) => { if (ok) sse++; }));
      batch.push(wsTry(k).then((ok) => { if (ok) ws++; }));
    }
    await Promise.all(batch);
  }
  console.log(`sse ${sse}/${N} ws ${ws}/${N}`);
  process.exit(sse === N && ws === N ? 0 : 1);
})();
