// clients.js BASEURL NSSE NWS CHANNEL PREFIX — reconnecting clients through
// the balancer for tests/compose/run.sh. Each subscribes to the flags channel
// and to CHANNEL.
//
// The clients are tests/integration/gw/reconnect.js's (EventSource-like SSE,
// SDK-like WS resuming with "since"); this file says what they print.
//
// Output, one line each: <ms since epoch> <name> <what>, names PREFIX-sse0..,
// PREFIX-ws0..:
//   open                        stream established (SSE 200 / WS subscribed)
//   status <code>               SSE answer other than 200, WS handshake refused
//   msg <seq> <epoch> <offset>  a message on CHANNEL whose data is {"seq":N}
//   flag <key> <type> <version> <epoch> <offset>   a flag event
//   end | close <code>          SSE stream ended / WS closed by the server
//   error <text>                connection error (then reconnects)
// Runs until SIGTERM.
'use strict';
const { run } = require('../integration/gw/reconnect.js');

const [base, nsseArg, nwsArg, channel, prefix] = process.argv.slice(2);

// one event object (SSE data or WS message) -> an output line, or null
function describe(o) {
  if (o.channel === channel && o.data && typeof o.data.seq === 'number')
    return 'msg ' + o.data.seq + ' ' + o.epoch + ' ' + o.offset;
  if (o.channel === 'flags' && typeof o.type === 'string' && o.type.startsWith('flag.')) {
    const v = o.data && o.data.version !== undefined ? o.data.version : (o.flag && o.flag.version);
    return 'flag ' + o.flagKey + ' ' + o.type + ' ' + v + ' ' + o.epoch + ' ' + o.offset;
  }
  return null;
}

run(parseInt(nsseArg, 10), parseInt(nwsArg, 10), prefix + '-',
  { base, channels: ['flags', channel], describe, refused: true, wsErrors: true });
