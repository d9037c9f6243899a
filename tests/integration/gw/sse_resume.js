// sse_resume.js IDFILE URL [URL...] — an SSE client that reconnects the way
// a browser's EventSource does: when the stream ends (or cannot be opened)
// it waits RETRY_MS (default 200) and opens the next URL of the list (round
// robin), sending the last event id it saw as the Last-Event-ID header.
// Prints one summary line per event (summary.js; "BAD ..." for a malformed
// one), "open" for each stream opened; the last id seen is also written to
// IDFILE, so a test can stop the client and start another with LAST_ID=...
// (the id to start from, as a browser keeps it across a reload).
'use strict';
const http = require('http');
const fs = require('fs');
const { summarize } = require('./summary');

const idFile = process.argv[2];
const urls = process.argv.slice(3);
const retryMs = parseInt(process.env.RETRY_MS || '200', 10);
let lastId = process.env.LAST_ID || null;
let k = 0;

function say(line) { process.stdout.write(line + '\n'); }

function handleBlock(block) {
  let id = null, data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  if (id !== null) {
    lastId = id;
    fs.writeFileSync(idFile, id);
  }
  if (data.length === 0) return;
  let o;
  try { o = JSON.parse(data.join('\n')); } catch (e) { return say('BAD json'); }
  say(summarize(o));
}

function connect() {
  const url = urls[k++ % urls.length];
  const headers = lastId ? { 'Last-Event-ID': lastId } : {};
  const req = http.get(url, { headers }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      return setTimeout(connect, retryMs);
    }
    say('open');
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        handleBlock(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
    });
    res.on('end', () => setTimeout(connect, retryMs));
    res.on('error', () => {});
  });
  req.on('error', () => setTimeout(connect, retryMs));
}

process.on('SIGTERM', () => process.exit(0));
connect();
