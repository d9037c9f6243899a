// sse_parse.js FILE — parses a captured SSE stream (curl -N output) and
// prints one summary line per event (summary.js), ":" for each comment,
// "retry N" for retry fields. An event whose data is not valid JSON, whose
// `event:` name does not fit its data, or whose id is not
// <channel>/<epoch>/<offset> for live events, prints a "BAD ..." line.
// An incomplete last event (no blank line yet) is ignored.
'use strict';
const fs = require('fs');
const { summarize } = require('./summary');

const text = fs.readFileSync(process.argv[2], 'utf8');
const blocks = text.split('\n\n');
blocks.pop(); // the unterminated tail
const out = [];
for (const block of blocks) {
  let id = null, event = null, data = [], comment = false, retry = null;
  for (const line of block.split('\n')) {
    if (line === '') continue;
    if (line.startsWith(':')) { comment = true; continue; }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'retry') retry = value;
    else out.push('BAD field ' + JSON.stringify(field));
  }
  if (retry !== null) out.push('retry ' + retry);
  if (data.length === 0) { if (comment) out.push(':'); continue; }
  let o;
  try { o = JSON.parse(data.join('\n')); } catch (e) { out.push('BAD json ' + JSON.stringify(data.join('\n')).slice(0, 200)); continue; }
  let line = summarize(o);
  const want = o.type === 'connected' ? 'connection' : o.type;
  if (event !== want) line += ' BAD event=' + event;
  if (o.type !== 'connected' && o.type !== 'snapshot' && !(o.type === 'resync' && o.epoch === undefined)) {
    const wantId = o.channel + '/' + o.epoch + '/' + o.offset;
    // a stream of several channels carries a list cursor (one item per
    // channel, space-separated): the event's own position must be in it
    if (id !== wantId && !(id && id.split(' ').includes(wantId))) line += ' BAD id=' + id;
  }
  out.push(line);
}
process.stdout.write(out.length ? out.join('\n') + '\n' : '');
