// summary.js — one comparable line per gateway message, shared by the SSE
// and WebSocket test clients, so a test can diff what a client received
// against what its filter should select. Also checks the shape of each
// object (Flagent's fields on flag events) and reports violations in the
// line itself ("BAD ..."), so a diff shows them.
'use strict';

function flagEventProblems(o) {
  const bad = [];
  if (typeof o.flagID !== 'number') bad.push('flagID');
  if (typeof o.flagKey !== 'string') bad.push('flagKey');
  if (typeof o.message !== 'string') bad.push('message');
  if (typeof o.timestamp !== 'number') bad.push('timestamp');
  if (!o.data || typeof o.data !== 'object') bad.push('data');
  else for (const [k, v] of Object.entries(o.data)) if (typeof v !== 'string') bad.push('data.' + k);
  if (typeof o.channel !== 'string') bad.push('channel');
  if (typeof o.offset !== 'number') bad.push('offset');
  if (!o.flag || typeof o.flag !== 'object') bad.push('flag');
  else if (o.flag.key !== o.flagKey) bad.push('flag.key');
  return bad;
}

function summarize(o) {
  if (o === null || typeof o !== 'object') return 'BAD not-an-object';
  switch (o.type) {
    case 'connected':
      return typeof o.message === 'string' ? 'connected' : 'BAD connected-without-message';
    case 'snapshot': {
      if (!Array.isArray(o.flags)) return 'BAD snapshot-without-flags';
      const keys = o.flags.map((f) => f.key).sort();
      return 'snapshot ' + (keys.length ? keys.join(',') : '-');
    }
    case 'subscribed': {
      const ch = Array.isArray(o.channels) ? o.channels.join(',') : '?';
      return 'subscribed channels=' + (ch || '-') + ' all=' + !!o.subscribeAll;
    }
    case 'pong':
      return 'pong' + (o.id !== undefined ? ' ' + JSON.stringify(o.id) : '');
    case 'error':
      return 'error ' + o.code + (typeof o.message === 'string' ? '' : ' BAD no-message');
    case 'message':
      return 'message ' + o.channel + ' ' + o.offset + ' ' + JSON.stringify(o.data);
    case 'resync':
      return 'resync ' + o.channel + ' ' + JSON.stringify(o.reason) +
        (typeof o.message === 'string' ? '' : ' BAD no-message');
    default: {
      if (typeof o.type !== 'string' || !o.type.startsWith('flag.') && !o.type.endsWith('.updated'))
        return 'BAD unknown-type ' + JSON.stringify(o.type);
      const bad = flagEventProblems(o);
      const line = o.type + ' ' + o.channel + ' ' + o.flagKey + ' ' + o.offset +
        ' enabled=' + (o.flag ? o.flag.enabled : '?');
      return bad.length ? line + ' BAD ' + bad.join(',') : line;
    }
  }
}

module.exports = { summarize };
