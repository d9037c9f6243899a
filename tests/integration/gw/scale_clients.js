// scale_clients.js BASEURL NSSE NWS CHANNEL — many reconnecting clients in
// one process, for the scale-out test (test_scale_haproxy.sh).
//
// The clients are reconnect.js's: SSE like a browser EventSource (retry:,
// Last-Event-ID), WS like an SDK (after a close, subscribe again with
// "since" {CHANNEL: {epoch, offset}} of the last message seen). Every
// client subscribes to CHANNEL only.
//
// Output, one line each, prefixed by the client's name (sse0.., ws0..) and
// the time in ms since the epoch:
//   <t> <name> open                 stream established (SSE 200 / WS subscribed)
//   <t> <name> status <code>        SSE answer other than 200, WS handshake refused
//   <t> <name> retry <ms>           SSE retry: hint
//   <t> <name> msg <seq>            a message on CHANNEL whose data is {"seq":N}
//   <t> <name> end                  SSE stream ended
//   <t> <name> close <code>         WS closed by the server
//   <t> <name> error <text>         connection error (then reconnects)
// Runs until SIGTERM.
'use strict';
const { run } = require('./reconnect.js');

const base = process.argv[2];
const channel = process.argv[5];

run(parseInt(process.argv[3], 10), parseInt(process.argv[4], 10), '', {
  base,
  channels: [channel],
  describe: (o) => (o.channel === channel && o.data && typeof o.data.seq === 'number'
    ? 'msg ' + o.data.seq : null),
  retryLines: true,
});
