// sse_many.js URL N LAST_ID LAST_OFFSET — opens N SSE streams at once, each
// sending Last-Event-ID: LAST_ID (a cursor <channel>/<epoch>/<offset>), and
// waits until every one has received the messages after the cursor's offset
// up to LAST_OFFSET, exactly once and in order. Prints "ok N" (exit 0), or
// what went wrong after 60 s (exit 1).
'use strict';
const http = require('http');

const [url, nArg, lastId, lastArg] = process.argv.slice(2);
const n = parseInt(nArg, 10), last = parseInt(lastArg, 10);
const from = parseInt(lastId.split('/').pop(), 10) + 1;
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
let done = 0;
const state = [];

function finish(code, msg) { console.log(msg); process.exit(code); }

for (let k = 0; k < n; k++) {
  const st = { next: from, bad: null };
  state.push(st);
  http.get(url, { agent, headers: { 'Last-Event-ID': lastId } }, (res) => {
    if (res.statusCode !== 200) finish(1, 'stream ' + k + ': HTTP ' + res.statusCode);
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
        if (!data.length) continue;
        const o = JSON.parse(data.join('\n'));
        if (o.type !== 'message') continue;
        if (o.offset !== st.next) finish(1, `stream ${k}: expected offset ${st.next}, got ${o.offset}`);
        st.next++;
        if (st.next === last + 1 && ++done === n) finish(0, 'ok ' + n);
      }
    });
  }).on('error', (e) => finish(1, 'stream ' + k + ': ' + e.message));
}
setTimeout(() => {
  const behind = state.filter((s) => s.next !== last + 1).length;
  finish(1, `${behind} of ${n} streams did not get everything`);
}, 60000);
