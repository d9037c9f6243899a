// check_seq.js FILE CHANNEL N [resync] — checks what a client printed
// (sse_resume.js / ws_resume.js output): the `message CHANNEL <offset>`
// lines must be exactly 1..N, each once, in order. With "resync", a jump
// forward is allowed only right after a `resync CHANNEL` line (the
// documented answer when history no longer reaches back), and at least one
// such line must be there. Prints "ok <count>" (exit 0) or what is wrong
// (exit 1).
'use strict';
const fs = require('fs');
const [file, channel, nArg, mode] = process.argv.slice(2);
const n = parseInt(nArg, 10);
const lines = fs.readFileSync(file, 'utf8').split('\n');
let expect = 1, count = 0, resyncs = 0, afterResync = false;
for (const l of lines) {
  if (l.startsWith('BAD') || l.includes(' BAD ')) { console.log('bad line: ' + l); process.exit(1); }
  if (l.startsWith('resync ' + channel + ' ')) { resyncs++; afterResync = true; continue; }
  const m = l.match(/^message (\S+) (\d+) /);
  if (!m || m[1] !== channel) continue;
  const off = parseInt(m[2], 10);
  if (off !== expect && !(mode === 'resync' && afterResync && off > expect)) {
    console.log(`expected offset ${expect}, got ${off} (line ${JSON.stringify(l)})`);
    process.exit(1);
  }
  afterResync = false;
  expect = off + 1;
  count++;
}
if (expect !== n + 1) { console.log(`stopped at ${expect - 1} of ${n}`); process.exit(1); }
if (mode === 'resync' && resyncs === 0) { console.log('no resync line'); process.exit(1); }
console.log('ok ' + count + (resyncs ? ' resyncs=' + resyncs : ''));
