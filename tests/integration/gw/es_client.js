// es_client.js URL UNTIL [SECONDS] — an EventSource client (npm's
// `eventsource`, which like browsers gives up for good on any non-200
// answer) for the refusal tests. Prints "open" for each response it
// accepted, "error <readyState>" for each error (0: it will reconnect, 2:
// closed for good), "event <type>" for named events. Exits 0 once UNTIL
// holds: "snapshot" (a snapshot event arrived) or "opens=N" (N responses
// accepted, i.e. N-1 reconnects); exits 1 if the library closes for good or
// after SECONDS (default 60).
'use strict';
const { EventSource } = require('eventsource');

const [url, until, secs = '60'] = process.argv.slice(2);
let opens = 0;
const say = (l) => process.stdout.write(l + '\n');
const es = new EventSource(url);
function done(code) { es.close(); process.exit(code); }
function check() {
  if (until.startsWith('opens=') && opens >= parseInt(until.slice(6), 10)) done(0);
}
es.addEventListener('open', () => { opens++; say('open'); check(); });
es.addEventListener('error', () => {
  say('error ' + es.readyState);
  if (es.readyState === 2) { say('closed for good'); done(1); }
});
for (const t of ['connection', 'snapshot'])
  es.addEventListener(t, () => { say('event ' + t); if (t === until) done(0); });
setTimeout(() => { say('timeout'); done(1); }, parseInt(secs, 10) * 1000);
