// chaos.js — the model-based delivery checker of issue 9.
//
// Runs real processes on loopback (redis-server with AOF appendfsync always,
// the publisher, GATEWAYS gateways), many SSE and WebSocket clients (JSON and
// msgpack, mixed filters, inboxes with tokens, leaving and resuming with their
// cursors, subscribe/unsubscribe storms, one slow reader), a publisher loop
// over the admin API and a seeded schedule of faults; then reads the truth
// from Redis (every channel's full history, plus a checkpoint taken before
// each fault that rewrites history) and checks every client against it.
// See docs/ARCHITECTURE.md, "Delivery guarantees", for the rules.
//
// Environment: SECONDS (60), SEED (random, printed), FAULTS (comma list of
// FAULT_KINDS; "all"; default: all but flushall, see DEFAULT_FAULTS), CLIENTS (scaled by SECONDS), GATEWAYS (3),
// FLAGCAST_BIN (bin/), CHAOS_KEEP=1 keeps the temp dir, CHAOS_VERBOSE=1.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const http = require('http');
const net = require('net');
const crypto = require('crypto');
const { spawn } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const GW_DIR = path.join(ROOT, 'tests', 'integration', 'gw');
const NM = path.join(GW_DIR, 'node_modules');
const WebSocket = require(path.join(NM, 'ws'));
const msgpack = require(path.join(NM, '@msgpack/msgpack'));
const { Redis, once: redisOnce } = require('./resp');

// ---------------------------------------------------------------- settings
const SECONDS = Math.max(20, parseInt(process.env.SECONDS || '60', 10));
const SEED = process.env.SEED ? parseInt(process.env.SEED, 10) >>> 0 : crypto.randomBytes(4).readUInt32LE(0);
const FAULT_KINDS = ['kill_pubsub', 'kill_normal', 'kill_both', 'redis_stop', 'redis_kill9', 'rollback',
  'rst_client', 'bad_writer', 'flushall', 'gw_kill9', 'gw_drain', 'churn', 'storm'];
// FAULTS=all (or default) names every kind.
const DEFAULT_FAULTS = FAULT_KINDS;
const FAULTS = !process.env.FAULTS || process.env.FAULTS === 'default' ? DEFAULT_FAULTS
  : process.env.FAULTS === 'all' ? FAULT_KINDS : process.env.FAULTS.split(',').filter(Boolean);
for (const f of FAULTS) if (!FAULT_KINDS.includes(f)) { console.error('chaos: unknown fault ' + f + '; known: ' + FAULT_KINDS.join(',')); process.exit(2); }
const NCLIENTS = parseInt(process.env.CLIENTS || String(Math.min(40, 16 + Math.floor(SECONDS / 15))), 10);
const NGW = parseInt(process.env.GATEWAYS || '3', 10);
const BIN = process.env.FLAGCAST_BIN || path.join(ROOT, 'bin');
const VERBOSE = !!process.env.CHAOS_VERBOSE;
const TOKEN = 'chaos-admin-token';
const JWT_SECRET = 'chaos-secret-0123456789abcdef0123456789abcdef';
const PREFIX = 'flagcast';
const QUIET = 12;              // seconds at the end without faults
const KEYS = Array.from({ length: 12 }, (_, i) => 'k' + i);
const TAGS = ['beta', 'gamma', 'ops'];
const CHANNELS = ['chat.a', 'chat.b', 'busy'];
const USERS = ['u1', 'u2', 'u3', 'u4'];

// ---------------------------------------------------------------- PRNG
function mulberry32(a) {
  return function () {
    a |= 0; a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function rng(sub) {
  const r = mulberry32((SEED ^ Math.imul(sub, 0x9E3779B1)) >>> 0);
  r.int = (a, b) => a + Math.floor(r() * (b - a + 1));
  r.pick = (arr) => arr[Math.floor(r() * arr.length)];
  r.some = (arr, n) => { const c = arr.slice(); const o = []; while (o.length < n && c.length) o.push(c.splice(Math.floor(r() * c.length), 1)[0]); return o; };
  return r;
}

const T0 = Date.now();
const now = () => Date.now();
const el = () => ((now() - T0) / 1000).toFixed(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function log(...a) { console.log(`[${el()}s]`, ...a); }
function vlog(...a) { if (VERBOSE) log(...a); }

// ---------------------------------------------------------------- processes
const TMP = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'flagcast-chaos.'));
const procs = new Set();
let exiting = false;

function startProc(name, cmd, args, env, cwd) {
  const out = fs.openSync(path.join(TMP, name + '.log'), 'a');
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', out, out], cwd: cwd || TMP });
  fs.closeSync(out);
  p.name = name;
  procs.add(p);
  p.exited = new Promise((r) => p.on('exit', (code, sig) => { procs.delete(p); p.code = code; p.sig = sig; r(); }));
  return p;
}

function killAll() {
  for (const p of procs) { try { process.kill(p.pid, 'SIGCONT'); p.kill('SIGKILL'); } catch (e) { /* gone */ } }
}
function cleanupAndExit(code) {
  if (exiting) return;
  exiting = true;
  killAll();
  if (!process.env.CHAOS_KEEP && code === 0) fs.rmSync(TMP, { recursive: true, force: true });
  else console.log('chaos: logs kept in ' + TMP);
  process.exit(code);
}
process.on('SIGINT', () => { console.log('chaos: interrupted'); cleanupAndExit(130); });
process.on('SIGTERM', () => { console.log('chaos: terminated'); cleanupAndExit(143); });
process.on('exit', () => killAll());
process.on('uncaughtException', (e) => { console.error('chaos: internal error', e); cleanupAndExit(3); });
process.on('unhandledRejection', (e) => { console.error('chaos: internal error', e); cleanupAndExit(3); });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

async function waitFor(what, fn, secs) {
  const end = now() + secs * 1000;
  for (;;) {
    try { if (await fn()) return; } catch (e) { /* not yet */ }
    if (now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(100);
  }
}

function httpReq(method, url, body, timeoutMs = 4000, headers = {}) {
  return new Promise((resolve) => {
    const u = new URL(url);
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request({ method, hostname: u.hostname, port: u.port, path: u.pathname + u.search, timeout: timeoutMs,
      headers: { ...headers, ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) { /* not json */ }
        resolve({ status: res.statusCode, json, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', () => resolve({ status: 0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0 }));
    if (data) req.write(data);
    req.end();
  });
}

// Redis ------------------------------------------------------------------
const R = { port: 0, proc: null };
function redisArgs(aof) {
  return ['--port', String(R.port), '--bind', '127.0.0.1', '--dir', TMP, '--save', '', '--dbfilename', 'dump.rdb',
    '--appendonly', aof ? 'yes' : 'no', '--appendfsync', 'always', '--daemonize', 'no'];
}
async function redisStart(aof = true) {
  R.proc = startProc('redis', 'redis-server', redisArgs(aof));
  await waitFor('redis ping', async () => (await redisOnce(R.port, 'PING')) === 'PONG', 20);
}
async function redisKill9() {
  const p = R.proc;
  try { process.kill(p.pid, 'SIGCONT'); } catch (e) { /* gone */ }
  p.kill('SIGKILL');
  await p.exited;
}
const rcmd = (...a) => redisOnce(R.port, ...a);

// Publisher and gateways ---------------------------------------------------
const PUB = { port: 0, url: '' };
async function startPublisher() {
  PUB.proc = startProc('publisher', path.join(BIN, 'flagcast-publisher'), [], {
    FLAGCAST_LISTEN: `127.0.0.1:${PUB.port}`, FLAGCAST_REDIS_URL: `redis://127.0.0.1:${R.port}`,
    FLAGCAST_ADMIN_TOKENS: TOKEN, FLAGCAST_HISTORY_SIZE: '1000000' });
  await waitFor('publisher ready', async () => (await httpReq('GET', PUB.url + '/readyz')).status === 200, 20);
}
const GWS = [];
function gwEnv(g) {
  return { FLAGCAST_LISTEN: `127.0.0.1:${g.port}`, FLAGCAST_REDIS_URL: `redis://127.0.0.1:${R.port}`,
    FLAGCAST_JWT_SECRET: JWT_SECRET, FLAGCAST_HISTORY_SIZE: '1000000', FLAGCAST_THREADS: '2',
    FLAGCAST_DRAIN_SECONDS: '3', FLAGCAST_DRAIN_DELAY: '1', FLAGCAST_SSE_RETRY: '300', FLAGCAST_SSE_KEEPALIVE: '5' };
}
async function gwStart(g, wait = true) {
  g.proc = startProc('gw' + g.i, path.join(BIN, 'flagcast-gateway'), [], gwEnv(g));
  g.starts = (g.starts || 0) + 1;
  if (wait) await waitFor('gateway ' + g.i + ' ready', async () => (await httpReq('GET', g.url + '/readyz', undefined, 2000)).status === 200, 30);
}
async function gwMetric(g, name) {
  const r = await httpReq('GET', g.url + '/metrics', undefined, 3000);
  if (r.status !== 200) return null;
  const m = r.text.split('\n').find((l) => l.split(' ')[0] === name);
  return m ? parseFloat(m.split(' ')[1]) : 0;
}

// ---------------------------------------------------------------- JWT
function jwt(claims) {
  const b64 = (b) => Buffer.from(b).toString('base64url');
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + '.' + b64(JSON.stringify(claims));
  return head + '.' + crypto.createHmac('sha256', JWT_SECRET).update(head).digest('base64url');
}

// ---------------------------------------------------------------- model
// A filter: channels (logical channels it asked for; 'flags' included when
// it wants flag events), keys/ids/tags (flag items; empty: all flags).
function flagMatch(f, rec) {
  if (!rec) return false;
  if (!f.keys.length && !f.ids.length && !f.tags.length) return true;
  if (f.keys.length && !f.keys.includes(rec.key)) return false;
  if (f.ids.length && !f.ids.includes(rec.id)) return false;
  if (f.tags.length && !(rec.tags || []).some((t) => f.tags.includes(t))) return false;
  return true;
}
// Fingerprint of an event, the same for what a client got and what history holds.
function fpOf(type, flag, data) {
  if (type === 'message') return 'm:' + JSON.stringify(data);
  return type + ':' + flag.key + ':' + flag.version + ':' + flag.enabled + ':' + (flag.tags || []).join('+') + ':' + (flag.description || '');
}

// Publication start times (ms), by fingerprint-ish keys, for the join rule.
const pubStart = new Map();   // 'm:<json>' or 'f:<key>:<version>' → ms
function startOf(ev) {
  return ev.type === 'message' ? pubStart.get(ev.fp) : pubStart.get('f:' + ev.flag.key + ':' + ev.flag.version + ':' + ev.fp);
}

// Truth: eras of history (each a read of Redis), channel → epoch → offset → ev.
const eras = [];   // {t, ch: Map(ch → {epoch, list: [ev], byOff: Map})}
async function readTruth(label) {
  const r = new Redis(R.port, 20000);
  await r.connect();
  const era = { label, t: now(), ch: new Map(), flags: null };
  try {
    let cursor = '0';
    const keys = [];
    do {
      const res = await r.cmd('SCAN', cursor, 'MATCH', PREFIX + ':hist:*', 'COUNT', 1000);
      cursor = res[0].toString();
      for (const k of res[1]) keys.push(k.toString());
    } while (cursor !== '0');
    for (const k of keys) {
      const ch = k.slice((PREFIX + ':hist:').length);
      const entries = await r.cmd('XRANGE', k, '-', '+');
      const byEpoch = new Map();
      for (const [, fields] of entries) {
        const msg = fields[1];
        const [hdr, body] = [...msgpack.decodeMulti(msg)];
        const ev = { ch, epoch: hdr[2], offset: Number(hdr[3]), type: body.type, flag: body.flag || null, data: body.data };
        ev.fp = fpOf(ev.type, ev.flag, ev.data);
        if (!byEpoch.has(ev.epoch)) byEpoch.set(ev.epoch, { epoch: ev.epoch, list: [], byOff: new Map() });
        const e = byEpoch.get(ev.epoch);
        e.list.push(ev);
        e.byOff.set(ev.offset, ev);
      }
      for (const e of byEpoch.values()) {
        e.list.sort((a, b) => a.offset - b.offset);
        if (ch === 'flags') {   // the record each flag had before the change
          const prev = new Map();
          for (const ev of e.list) {
            ev.prev = prev.get(ev.flag.key) || null;
            if (ev.type === 'flag.deleted') prev.delete(ev.flag.key); else prev.set(ev.flag.key, ev.flag);
          }
        }
      }
      era.ch.set(ch, byEpoch);
      const meta = await r.cmd('HMGET', PREFIX + ':meta:' + ch, 'epoch', 'offset');
      era.ch.get(ch).meta = meta[0] ? { epoch: meta[0].toString(), offset: parseInt(meta[1].toString(), 10) } : null;
    }
  } finally { r.close(); }
  eras.push(era);
  return era;
}
function eraEpoch(era, ch, epoch) { const c = era.ch.get(ch); return c ? c.get(epoch) : undefined; }
// The era holding ev (ch, epoch, offset, fp): first the one that was current
// when the client got it (the first checkpoint read after that moment: a
// rollback can put the same event again at the same offset in a later
// era, with different neighbours), else the newest holding it.
function eraOf(ch, epoch, offset, fp, t) {
  const cur = t === undefined ? -1 : eras.findIndex((e) => e.t >= t);
  if (cur >= 0) {
    const e = eraEpoch(eras[cur], ch, epoch);
    const x = e && e.byOff.get(offset);
    if (x && x.fp === fp) return { era: eras[cur], ep: e, ev: x };
  }
  for (let i = eras.length - 1; i >= 0; i--) {
    const e = eraEpoch(eras[i], ch, epoch);
    const t = e && e.byOff.get(offset);
    if (t && t.fp === fp) return { era: eras[i], ep: e, ev: t };
  }
  return null;
}

// ---------------------------------------------------------------- clients
const clients = [];
const stats = { events: 0, frames: 0, resyncs: {}, snapshots: 0, reconnects: 0 };
const violations = [];
const knownGaps = [];   // none any more: every gap is a violation (kept for the report line)
const faultLog = [];
const faultCount = {};
let lastHistoryRewrite = 0;   // ms of the last rollback/flushall

class Client {
  constructor(id, spec) {
    Object.assign(this, spec);
    this.id = id;
    this.obs = new Map();      // ch → [observation]
    this.pos = new Map();      // ch → {epoch, offset} (WS since)
    this.lastId = null;        // SSE cursor
    this.transcript = [];
    this.alive = true;         // wants to be connected
    this.conn = null;
    this.k = id;               // gateway round robin
    this.inactive = new Set(); // WS channels unsubscribed by a storm
    this.connects = 0;
    this.away = [];            // [from, to] ms around each resume with a cursor
    this.dropT = 0;
    for (const ch of this.filter.channels) this.obs.set(ch, []);
  }
  note(line) {
    this.transcript.push(`${el()} ${line}`);
  }
  dropped() { if (!this.dropT) this.dropT = now(); }
  resumedNow() { this.away.push({ from: (this.dropT || now()) - 2000, to: now() }); this.dropT = 0; }
  add(ch, o) {
    if (!this.obs.has(ch)) { this.note('(not asked) ' + ch); return; }
    o.t = now();
    o.line = this.transcript.length - 1;
    this.obs.get(ch).push(o);
  }
  gwUrl() { const g = GWS[this.k++ % GWS.length]; return g; }
  start() { this.alive = true; if (!this.retrying && !this.conn) this.connect(); }
  stop() { this.alive = false; if (this.conn) this.conn.close(); }
  retry(ms) {
    if (this.retrying || exiting) return;
    this.retrying = true;
    setTimeout(() => { this.retrying = false; if (this.alive) this.connect(); }, ms);
  }
  // A fresh acknowledgement (new start) for the channels not continued by a cursor.
  joinFresh(chs, why) { for (const ch of chs) this.add(ch, { kind: 'join', why }); }
  onEvent(o, rawId) {
    stats.frames++;
    const ch = o.channel;
    if (o.type === 'message' || (typeof o.type === 'string' && o.type.startsWith('flag.')) || (o.flag && o.flagKey)) {
      const fp = fpOf(o.type, o.flag, o.data);
      this.note(`${o.type} ${ch} ${o.epoch}/${o.offset} ${o.type === 'message' ? JSON.stringify(o.data) : o.flagKey + ' v' + (o.flag && o.flag.version)}`);
      if (this.transport !== 'sse' && this.inactive.has(ch)) { this.note('  (unsubscribed: ignored)'); return; }
      this.add(ch, { kind: 'ev', epoch: o.epoch, offset: o.offset, fp, type: o.type, flag: o.flag || null });
      this.pos.set(ch, { epoch: o.epoch, offset: o.offset });
    } else if (o.type === 'resync') {
      this.note(`resync ${ch} ${o.epoch}/${o.offset} ${JSON.stringify(o.reason)}`);
      stats.resyncs[o.reason] = (stats.resyncs[o.reason] || 0) + 1;
      this.add(ch, { kind: 'resync', epoch: o.epoch, offset: o.offset, reason: o.reason });
      if (o.epoch) this.pos.set(ch, { epoch: o.epoch, offset: o.offset });
    } else if (o.type === 'snapshot') {
      stats.snapshots++;
      let p = null;
      if (rawId) { const it = parseCursor(rawId).get('flags'); if (it) p = it; }
      else if (o.channel === 'flags' && typeof o.epoch === 'string' && typeof o.offset === 'number') p = { epoch: o.epoch, offset: o.offset };
      this.note(`snapshot ${o.flags.map((f) => f.key + 'v' + f.version).join(',') || '-'}${p ? ' at ' + p.epoch + '/' + p.offset : ''}`);
      this.add('flags', { kind: 'snap', flags: o.flags, pos: p, resume: this.resumingFlags });
      if (p && p.epoch !== '-') this.pos.set('flags', p);
      else if (!p) this.pos.delete('flags');   // a snapshot without a position: start fresh next time
    } else if (o.type === 'error') {
      this.note('error ' + o.code + ' ' + o.message);
      violations.push({ client: this, ch: '-', msg: 'gateway answered error ' + o.code + ': ' + o.message });
    } else {
      this.note(o.type + ' ' + JSON.stringify(o).slice(0, 200));
    }
  }
}

function parseCursor(s) {
  const m = new Map();
  for (const item of s.trim().split(/\s+/)) {
    const i = item.lastIndexOf('/');
    const j = item.lastIndexOf('/', i - 1);
    if (i < 0 || j < 0) continue;
    m.set(item.slice(0, j), { epoch: item.slice(j + 1, i), offset: parseInt(item.slice(i + 1), 10) });
  }
  return m;
}

class SseClient extends Client {
  connect() {
    const g = this.gwUrl();
    const f = this.filter;
    const q = [];
    q.push('channels=' + f.channels.filter((c) => !c.startsWith('user:') && !c.startsWith('role:')).join(','));
    if (f.keys.length) q.push('flagKeys=' + f.keys.join(','));
    if (f.tags.length) q.push('tags=' + f.tags.join(','));
    if (f.ids.length) q.push('flagIDs=' + f.ids.join(','));
    if (this.token) q.push('token=' + this.token);
    const headers = this.lastId ? { 'Last-Event-ID': this.lastId } : {};
    const cursorAtStart = this.lastId ? parseCursor(this.lastId) : new Map();
    this.connects++;
    const req = http.get(g.url + '/api/v1/realtime/sse?' + q.join('&'), { headers }, (res) => {
      if (res.statusCode !== 200) { this.note('HTTP ' + res.statusCode); res.resume(); return this.retry(300); }
      let buf = '';
      let retryMs = 300;
      res.setEncoding('utf8');
      this.conn = { close: () => req.destroy(), res };
      this.note(`open gw${g.i}${this.lastId ? ' Last-Event-ID: ' + this.lastId : ''}`);
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = null, event = null; const data = [];
          for (const line of block.split('\n')) {
            if (line === '' || line.startsWith(':')) continue;
            const k = line.indexOf(':');
            const field = k < 0 ? line : line.slice(0, k);
            let v = k < 0 ? '' : line.slice(k + 1);
            if (v.startsWith(' ')) v = v.slice(1);
            if (field === 'id') id = v; else if (field === 'event') event = v; else if (field === 'data') data.push(v);
            else if (field === 'retry') retryMs = Math.min(1500, parseInt(v, 10) || 300);
          }
          if (id !== null) this.lastId = id;
          if (event === 'connection') {
            this.note('connection');
            this.resumingFlags = cursorAtStart.has('flags');
            if (this.resumingFlags) { this.add('flags', { kind: 'resume' }); this.resumedNow(); }
            this.joinFresh(this.filter.channels.filter((c) => !cursorAtStart.has(c)), 'connection');
            continue;
          }
          if (!data.length) { if (id !== null) this.note('id ' + id); continue; }
          let o;
          try { o = JSON.parse(data.join('\n')); } catch (e) { violations.push({ client: this, ch: '-', msg: 'bad JSON frame' }); continue; }
          this.onEvent(o, id);
          if (o.type === 'snapshot') this.resumingFlags = false;
        }
      });
      res.on('end', () => { this.note('end'); this.dropped(); this.conn = null; stats.reconnects++; this.retry(retryMs); });
      res.on('error', () => {});
      res.on('close', () => { this.dropped(); this.conn = null; this.retry(retryMs); });
      if (this.slow) this.slowLoop(res);
    });
    req.on('error', (e) => { this.note('error ' + e.code); this.conn = null; this.retry(300); });
  }
  slowLoop(res) {
    const r = rng(1000 + this.id);
    const tick = () => {
      if (res.destroyed || exiting) return;
      res.pause();
      this.note('(slow: paused)');
      setTimeout(() => { res.resume(); setTimeout(tick, r.int(1000, 3000)); }, r.int(1000, 4000));
    };
    setTimeout(tick, 1000);
  }
}

class WsClient extends Client {
  subMsg(chs, withSince) {
    const f = this.filter;
    const m = { type: 'subscribe', channels: chs.filter((c) => c !== 'flags' || (!f.keys.length && !f.tags.length && !f.ids.length)) };
    if (chs.includes('flags')) {
      if (f.keys.length) m.flags = f.keys;
      if (f.tags.length) m.tags = f.tags;
      if (f.ids.length) m.flagIDs = f.ids;
    }
    if (withSince) {
      const since = {};
      for (const c of chs) if (this.pos.has(c)) since[c] = this.pos.get(c);
      if (Object.keys(since).length) m.since = since;
    }
    return m;
  }
  send(m) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(this.fmt === 'msgpack' ? Buffer.from(msgpack.encode(m)) : JSON.stringify(m));
    return true;
  }
  connect() {
    const g = this.gwUrl();
    const url = g.wsurl + '/ws' + (this.token ? '?token=' + this.token : '');
    this.connects++;
    const ws = new WebSocket(url, this.fmt === 'msgpack' ? 'flagcast.msgpack' : 'flagcast.json');
    this.ws = ws;
    this.conn = { close: () => ws.terminate() };
    this.pending = [];        // outstanding subscribe/unsubscribe requests, in order
    this.inactive = new Set();
    let done = false;
    const again = (why) => { if (done) return; done = true; this.dropped(); this.note('closed ' + why); this.conn = null; stats.reconnects++; this.retry(300); };
    ws.on('open', () => {
      this.note(`open gw${g.i} ${this.fmt}`);
      if (this.slow) this.slowLoop(ws);
    });
    ws.on('message', (d, isBin) => {
      let o;
      try { o = isBin ? msgpack.decode(d) : JSON.parse(d.toString('utf8')); } catch (e) { violations.push({ client: this, ch: '-', msg: 'undecodable frame' }); return; }
      if (o.type === 'connected') {
        this.note('connected');
        const inbox = this.filter.channels.filter((c) => c.startsWith('user:') || c.startsWith('role:'));
        this.joinFresh(inbox.filter((c) => !this.pos.has(c)), 'connected');
        // Everything else, with since for each channel it has a position on.
        const m = this.subMsg(this.filter.channels, true);
        const sinceChs = new Set(Object.keys(m.since || {}));
        this.pending.push({ kind: 'sub', chs: this.filter.channels.slice(), since: sinceChs, first: true, inbox });
        this.send(m);
        return;
      }
      if (o.type === 'subscribed') {
        const p = this.pending.shift();
        this.note('subscribed ' + (o.channels || []).join(',') + (p && p.since && p.since.size ? ' since ' + [...p.since].join(',') : ''));
        if (!p) return;
        if (p.kind === 'sub') {
          const fresh = p.chs.filter((c) => !p.since.has(c) && !(p.first && p.inbox.includes(c)));
          this.joinFresh(fresh, 'subscribed');
          for (const c of p.chs) this.inactive.delete(c);
          if (p.chs.includes('flags')) this.resumingFlags = p.since.has('flags');
          if (p.since.has('flags')) { this.add('flags', { kind: 'resume' }); this.resumedNow(); }
        } else {
          for (const c of p.chs) this.inactive.add(c);
        }
        if (p.resolve) p.resolve();
        return;
      }
      if (o.type === 'pong') return;
      this.onEvent(o, null);
    });
    ws.on('close', (code) => again('code ' + code));
    ws.on('error', (e) => again('error ' + e.message));
    ws.on('unexpected-response', (req, res) => { res.resume(); again('HTTP ' + res.statusCode); });
  }
  // One unsubscribe/subscribe cycle of ch; resolves when it was acknowledged.
  async cycle(ch, gapMs) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.pending.length) return;
    const ws = this.ws;
    await new Promise((resolve) => {
      this.pending.push({ kind: 'unsub', chs: [ch], resolve });
      this.send({ type: 'unsubscribe', channels: [ch] });
      setTimeout(resolve, 3000);
    });
    await sleep(gapMs);
    if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
    const m = this.subMsg([ch], true);
    const since = new Set(Object.keys(m.since || {}));
    if (since.has(ch)) this.inactive.delete(ch);   // events after this continue from the cursor
    await new Promise((resolve) => {
      this.pending.push({ kind: 'sub', chs: [ch], since, resolve, inbox: [] });
      this.send(m);
      setTimeout(resolve, 3000);
    });
  }
  slowLoop(ws) {
    const r = rng(1000 + this.id);
    const tick = () => {
      if (ws.readyState !== WebSocket.OPEN || exiting) return;
      ws._socket.pause();
      this.note('(slow: paused)');
      setTimeout(() => { try { ws._socket.resume(); } catch (e) { /* closed */ } setTimeout(tick, r.int(1000, 3000)); }, r.int(1000, 4000));
    };
    setTimeout(tick, 1000);
  }
}

function makeClients() {
  const r = rng(1);
  for (let i = 0; i < NCLIENTS; i++) {
    const transport = i === 0 ? 'ws' : r.pick(['sse', 'sse', 'ws', 'ws']);
    const fmt = transport === 'ws' ? r.pick(['json', 'msgpack']) : null;
    const f = { channels: [], keys: [], ids: [], tags: [] };
    const kind = i === 0 ? 'slow' : r.pick(['allflags', 'keys', 'tags', 'ids', 'channels', 'mixed', 'inbox']);
    let token = null;
    const user = r.pick(USERS);
    const roles = r() < 0.5 ? ['ops'] : [];
    switch (kind) {
      case 'slow': f.channels.push('flags', 'busy'); break;
      case 'allflags': f.channels.push('flags'); break;
      case 'keys': f.channels.push('flags'); f.keys = r.some(KEYS, r.int(1, 3)); break;
      case 'tags': f.channels.push('flags'); f.tags = r.some(TAGS, r.int(1, 2)); break;
      case 'ids': f.channels.push('flags'); f.ids = [r.int(1, 12), r.int(1, 12 + SECONDS * 2), r.int(1, 12 + SECONDS * 2)].filter((v, j, a) => a.indexOf(v) === j); break;
      case 'channels': f.channels.push(...r.some(CHANNELS, r.int(1, 2))); break;
      case 'mixed': f.channels.push('flags', ...r.some(CHANNELS, 1)); f.tags = r.some(TAGS, 1); break;
      case 'inbox': f.channels.push(...r.some(CHANNELS, 1)); if (r() < 0.5) f.channels.push('flags'); break;
    }
    if (kind === 'inbox' || (kind === 'mixed' && r() < 0.5)) {
      token = jwt({ sub: user, roles, exp: Math.floor(T0 / 1000) + SECONDS + 3600 });
      f.channels.push('user:' + user, ...roles.map((x) => 'role:' + x));
    }
    const spec = { filter: f, kind, transport, fmt, token, slow: kind === 'slow' };
    clients.push(transport === 'sse' ? new SseClient(i, spec) : new WsClient(i, spec));
  }
}

// ---------------------------------------------------------------- publisher loop
let pubStop = false;
let pubPause = null;   // {resolveIdle, resume: Promise}
// pausePublisher(): resolves once no admin call is in flight; resume with the returned function.
async function pausePublisher() {
  let go;
  const resume = new Promise((r) => { go = r; });
  let idle;
  const isIdle = new Promise((r) => { idle = r; });
  pubPause = { idle, resume };
  await Promise.race([isIdle, sleep(10000)]);
  return () => { pubPause = null; go(); };
}
const pubStats = { ok: 0, failed: 0 };
async function api(method, p, body) {
  const t = now();
  const res = await httpReq(method, PUB.url + p, body, 4000, { Authorization: 'Bearer ' + TOKEN });
  return { t, ...res };
}
async function publisherLoop() {
  const r = rng(2);
  let n = 0;
  const exists = new Set();
  while (!pubStop) {
    if (pubPause) { pubPause.idle(); await pubPause.resume; continue; }
    n++;
    const a = r();
    const key = r.pick(KEYS);
    let res;
    const noteFlag = (res) => {
      if (res.status >= 200 && res.status < 300 && res.json && res.json.flag) {
        const fl = res.json.flag;
        pubStart.set('f:' + fl.key + ':' + fl.version + ':' + fpOf(res.json.event, fl), res.t);
      }
    };
    if (a < 0.30) {
      const data = { u: n };
      res = await api('POST', `/api/v1/channels/${r.pick(CHANNELS)}/messages`, { data });
      pubStart.set('m:' + JSON.stringify(data), res.t);
    } else if (a < 0.40) {
      const data = { u: n, t: 1 };
      res = await api('POST', '/api/v1/messages', { users: r.some(USERS, r.int(1, 2)), roles: r() < 0.3 ? ['ops'] : [], data });
      pubStart.set('m:' + JSON.stringify(data), res.t);
    } else if (!exists.has(key) || a < 0.47) {
      res = await api('POST', '/api/v1/flags', { key, enabled: r() < 0.5, tags: r.some(TAGS, r.int(0, 2)), description: 'd' + n });
      if (res.status === 201 || res.status === 200 || res.status === 409) exists.add(key);
      noteFlag(res);
    } else if (a < 0.65) {
      res = await api('PUT', `/api/v1/flags/${key}/enabled`, { enabled: r() < 0.5 });
      noteFlag(res);
    } else if (a < 0.85) {
      res = await api('PUT', `/api/v1/flags/${key}`, r() < 0.5 ? { tags: r.some(TAGS, r.int(0, 2)), description: 'd' + n } : { description: 'd' + n });
      noteFlag(res);
    } else {
      res = await api('DELETE', `/api/v1/flags/${key}`);
      if (res.status === 200 || res.status === 404) exists.delete(key);
      noteFlag(res);
    }
    if (res.status === 404) exists.delete(key);
    if (res.status >= 200 && res.status < 300) pubStats.ok++; else pubStats.failed++;
    await sleep(r.int(10, 60));
  }
}

// ---------------------------------------------------------------- faults
function schedule() {
  const r = rng(3);
  const out = [];
  let t = 5;
  const end = SECONDS - QUIET;
  const kinds = FAULTS.slice();
  let k = 0;
  while (t < end && kinds.length) {
    // every kind once early (shuffled), then at random
    const kind = k < kinds.length ? kinds[(k * 7 + SEED) % kinds.length] : r.pick(kinds);
    out.push({ at: t, kind, r: r.int(0, 1e9) });
    k++;
    t += r.int(2, 5);
  }
  return out;
}
// Seed-sorted unique order for the first pass.
function firstPass(kinds) { const r = rng(4); return r.some(kinds, kinds.length); }

async function checkpoint(label) {
  const era = await readTruth(label);
  vlog('checkpoint', label, [...era.ch.keys()].length, 'channels');
}

async function fault(f) {
  const r = mulberry32(f.r); r.int = (a, b) => a + Math.floor(r() * (b - a + 1)); r.pick = (arr) => arr[Math.floor(r() * arr.length)];
  const desc = [];
  switch (f.kind) {
    case 'kill_pubsub': case 'kill_normal': case 'kill_both': {
      const types = f.kind === 'kill_both' ? ['pubsub', 'normal'] : [f.kind.slice(5)];
      for (const t of types) desc.push(t + '=' + (await rcmd('CLIENT', 'KILL', 'TYPE', t)));
      break;
    }
    case 'redis_stop': {
      const ms = r.int(1000, 5000);
      process.kill(R.proc.pid, 'SIGSTOP');
      await sleep(ms);
      process.kill(R.proc.pid, 'SIGCONT');
      desc.push(ms + 'ms');
      break;
    }
    case 'redis_kill9': {
      await redisKill9();
      const ms = r.int(300, 2000);
      await sleep(ms);
      await redisStart(true);
      desc.push('down ' + ms + 'ms');
      break;
    }
    case 'rollback': {
      await rcmd('SAVE');
      const ms = r.int(1500, 3000);
      await sleep(ms);   // traffic the rollback will lose
      const resume = await pausePublisher();
      try {
        await checkpoint('before rollback');
        await redisKill9();
      } finally { resume(); }
      fs.rmSync(path.join(TMP, 'appendonlydir'), { recursive: true, force: true });
      await redisStart(false);
      await rcmd('CONFIG', 'SET', 'appendonly', 'yes');
      await waitFor('AOF rewrite', async () => !/aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test((await rcmd('INFO', 'persistence')).toString()), 20);
      lastHistoryRewrite = now();
      desc.push('lost ' + ms + 'ms of writes');
      break;
    }
    case 'flushall': {
      const resume = await pausePublisher();
      try {
        await checkpoint('before flushall');
        await rcmd('FLUSHALL');
      } finally { resume(); }
      lastHistoryRewrite = now();
      break;
    }
    case 'bad_writer': {
      const ch = r.pick(CHANNELS);
      const meta = await rcmd('HMGET', PREFIX + ':meta:' + ch, 'epoch', 'offset');
      if (!meta[0]) { desc.push('no history on ' + ch); break; }
      const off = parseInt(meta[1].toString(), 10) + 1000;
      const rejected = async () => { let n = 0; for (const g of GWS) n += (await gwMetric(g, 'flagcast_gateway_offsets_rejected_total')) || 0; return n; };
      const before = await rejected();
      const msg = Buffer.concat([Buffer.from(msgpack.encode([1, ch, meta[0].toString(), off])),
        Buffer.from(msgpack.encode({ type: 'message', ts: now(), data: { bad: off } }))]);
      const got = await rcmd('PUBLISH', PREFIX + ':ch:' + ch, msg);
      desc.push(`${ch} offset ${off} to ${got} gateway(s)`);
      if (got > 0) {
        await waitFor('offsets_rejected_total to count the bad message', async () => (await rejected()) >= before + 1, 10)
          .then(() => desc.push('counted'))
          .catch(() => violations.push({ client: null, ch, msg: `a far-ahead offset reached ${got} gateway(s) but no flagcast_gateway_offsets_rejected_total moved within 10 s` }));
      }
      badWrites++;
      break;
    }
    case 'rst_client': {
      const g = r.pick(GWS);
      const p = startProc('rst', 'python3', [path.join(GW_DIR, 'rst_client.py'), '127.0.0.1', String(g.port), 'busy', '3'], {}, GW_DIR);
      await Promise.race([p.exited, sleep(15000)]);
      const t = now();
      await waitFor(`gw${g.i} /readyz after the RST client`, async () => (await httpReq('GET', g.url + '/readyz', undefined, 2000)).status === 200, 15)
        .catch(() => violations.push({ client: null, ch: '-', msg: `gw${g.i} did not answer /readyz within 15 s after a client reset with unread backlog` }));
      desc.push(`gw${g.i} readyz after ${now() - t}ms`);
      break;
    }
    case 'gw_kill9': case 'gw_drain': {
      const g = r.pick(GWS);
      if (f.kind === 'gw_kill9') g.proc.kill('SIGKILL'); else g.proc.kill('SIGTERM');
      const res = await Promise.race([g.proc.exited.then(() => 'exited'), sleep(20000).then(() => 'hung')]);
      if (res === 'hung') { violations.push({ client: null, ch: '-', msg: `gw${g.i} did not exit on ${f.kind}` }); g.proc.kill('SIGKILL'); await g.proc.exited; }
      else if (f.kind === 'gw_drain' && g.proc.code !== 0) violations.push({ client: null, ch: '-', msg: `gw${g.i} drain exit code ${g.proc.code}` });
      await sleep(r.int(200, 1500));
      await gwStart(g);
      desc.push('gw' + g.i);
      break;
    }
    case 'churn': {
      const n = r.int(2, 5);
      for (let i = 0; i < n; i++) {
        const c = clients[r.int(0, clients.length - 1)];
        const away = r.int(0, 4000);
        const fresh = r() < 0.3;   // comes back as a new client, without its cursor
        if (!c.alive) continue;
        desc.push(`c${c.id} away ${away}ms${fresh ? ' fresh' : ''}`);
        c.stop();
        setTimeout(() => {
          if (exiting || c.alive) return;
          if (fresh) { c.lastId = null; c.pos.clear(); c.note('(comes back fresh, no cursor)'); }
          c.start();
        }, away);
        c.pendingReturn = now() + away;
      }
      break;
    }
    case 'storm': {
      const ws = clients.filter((c) => c.transport === 'ws' && !c.slow && c.filter.channels.some((ch) => CHANNELS.includes(ch)));
      const picked = ws.length ? [r.pick(ws), r.pick(ws)] : [];
      await Promise.all(picked.map(async (c) => {
        const chs = c.filter.channels.filter((ch) => CHANNELS.includes(ch));
        for (let i = 0; i < r.int(3, 8); i++) await c.cycle(r.pick(chs), r.int(0, 400));
      }));
      desc.push(picked.map((c) => 'c' + c.id).join(','));
      break;
    }
  }
  return desc.join(' ');
}
let badWrites = 0;

// ---------------------------------------------------------------- oracle
let curObs = null;   // the observation being checked, for the transcript window
function violation(c, ch, msg) { violations.push({ client: c, ch, msg, line: curObs ? curObs.line : null }); }

function allowedReset(reason, t) {
  if (reason === 'history rolled back' || reason === 'epoch changed') return lastRewriteBefore(t);
  return false;
}
const rewrites = [];   // times of rollback / flushall
function lastRewriteBefore(t) { return rewrites.some((x) => x <= t); }

// A replay may end with a snapshot (the documented rule): the filter selects
// flags by tag and the gap holds a change, not a create, whose new record it
// does not select (history cannot say whether the flag left the filter).
function unsureReplay(f, from, pos) {
  if (!f.tags.length || !from || !pos || from.epoch !== pos.epoch) return false;
  for (let i = eras.length - 1; i >= 0; i--) {
    const e = eraEpoch(eras[i], 'flags', pos.epoch);
    if (!e) continue;
    for (const ev of e.list)
      if (ev.offset > from.offset && ev.offset <= pos.offset && ev.type !== 'flag.created' && !flagMatch(f, ev.flag)) return true;
  }
  return false;
}

function checkClient(c, final) {
  const f = c.filter;
  for (const [ch, list] of c.obs) {
    const sel = (ev) => ch !== 'flags' || flagMatch(f, ev.flag) || flagMatch(f, ev.prev);
    let last = null;      // {epoch, offset}
    let resumeFrom = null; // where the last resume started
    let seg = null;       // {t, known}
    const missing = [];   // slow reader: flag events it may have had conflated
    const resolveConflation = (ev, era) => {
      // an event of the same key received later excuses an earlier one (slow reader only)
      for (let i = missing.length - 1; i >= 0; i--) {
        const m = missing[i];
        if (m.epoch === ev.epoch && m.key === ev.flag.key && m.offset < ev.offset) missing.splice(i, 1);
      }
    };
    const gap = (ep, from, to, why) => {   // selected events in (from, to) that did not arrive
      for (const ev of ep.list) {
        if (ev.offset <= from || ev.offset >= to || !sel(ev)) continue;
        const st = startOf(ev);
        if (c.slow && ch === 'flags') { missing.push({ epoch: ev.epoch, offset: ev.offset, key: ev.flag.key, why }); continue; }
        violation(c, ch, `missing ${ev.epoch}/${ev.offset} (${ev.fp}) ${why}`);
        return;
      }
    };
    for (const o of list) {
      curObs = o;
      if (o.kind === 'join') { seg = { t: o.t, why: o.why }; last = null; continue; }
      if (o.kind === 'resume') { resumeFrom = last; continue; }
      if (o.kind === 'resync') {
        if (!allowedReset(o.reason, o.t)) violation(c, ch, `resync ${JSON.stringify(o.reason)} at ${o.epoch}/${o.offset} with no fault that explains it`);
        seg = { t: o.t, why: 'resync' };
        last = o.epoch ? { epoch: o.epoch, offset: o.offset } : null;
        continue;
      }
      if (o.kind === 'snap') {
        if (o.resume && !lastRewriteBefore(o.t) && !unsureReplay(f, resumeFrom, o.pos))
          violation(c, ch, 'snapshot on a resume that history covers (no rollback/flushall before it, no change in the replay that may have left its tag filter)');
        missing.length = 0;
        seg = { t: o.t, why: 'snapshot' };
        last = o.pos && o.pos.epoch !== '-' ? { epoch: o.pos.epoch, offset: o.pos.offset } : null;
        continue;
      }
      // an event
      stats.events++;
      const found = eraOf(ch, o.epoch, o.offset, o.fp, o.t);
      if (!found) { violation(c, ch, `received ${o.epoch}/${o.offset} (${o.fp}) that history never held at that position`); last = { epoch: o.epoch, offset: o.offset }; continue; }
      if (ch === 'flags' && !sel(found.ev)) violation(c, ch, `received ${o.epoch}/${o.offset} (${o.fp}) that its filter does not select`);
      if (c.slow && ch === 'flags') resolveConflation(o, found);
      if (last && last.epoch === o.epoch) {
        if (o.offset <= last.offset) violation(c, ch, `duplicate or out of order: ${o.epoch}/${o.offset} after ${last.offset}`);
        else gap(found.ep, last.offset, o.offset, `between ${last.offset} and ${o.offset}`);
      } else if (last && last.epoch !== o.epoch) {
        violation(c, ch, `epoch changed from ${last.epoch} to ${o.epoch} without a resync/snapshot`);
      } else if (seg) {
        // unknown start: what was published after the acknowledgement must be here
        for (const ev of found.ep.list) {
          if (ev.offset >= o.offset) break;
          const st = startOf(ev);
          if (sel(ev) && st !== undefined && st > seg.t) { violation(c, ch, `missing ${ev.epoch}/${ev.offset} (${ev.fp}), published ${st - seg.t}ms after the ${seg.why} at ${new Date(seg.t).toISOString()}`); break; }
        }
      }
      last = { epoch: o.epoch, offset: o.offset };
    }
    curObs = null;
    const reportMissing = () => { for (const m of missing.splice(0)) violation(c, ch, `missing ${m.epoch}/${m.offset} (${m.key}) ${m.why}, and no later event of that flag`); };
    if (!final || !c.alive) { reportMissing(); continue; }
    // tail: nothing it selects after its last position
    const fc = final.ch.get(ch);
    const ep = fc && fc.meta ? fc.get(fc.meta.epoch) : null;
    if (!ep) { reportMissing(); continue; }
    if (last && last.epoch === fc.meta.epoch) gap(ep, last.offset, Infinity, 'at the end');
    reportMissing();
    if (last && last.epoch === fc.meta.epoch) { /* checked above */ }
    else if (last) { if (ep.list.some(sel)) violation(c, ch, `ends in epoch ${last.epoch}, Redis has ${fc.meta.epoch}, no resync`); }
    else if (seg) {
      for (const ev of ep.list) {
        const st = startOf(ev);
        if (sel(ev) && st !== undefined && st > seg.t) { violation(c, ch, `missing ${ev.epoch}/${ev.offset} (${ev.fp}) at the end (nothing received since the ${seg.why})`); break; }
      }
    }
  }
}

// Final view: snapshot plus events applied by version, against the store.
function checkView(c, finalFlags) {
  const list = c.obs.get('flags');
  if (!list || !c.alive) return;
  const view = new Map();
  for (const o of list) {
    if (o.kind === 'snap') { view.clear(); for (const fl of o.flags) view.set(fl.key, fl); }
    else if (o.kind === 'resync') view.clear();
    else if (o.kind === 'ev') {
      let cur = view.get(o.flag.key);
      if (cur && cur.id !== o.flag.id) cur = null;   // deleted and created again: another flag
      if (o.type === 'flag.deleted') { if (!cur || cur.version <= o.flag.version) view.delete(o.flag.key); }
      else if (!cur || o.flag.version > cur.version) view.set(o.flag.key, o.flag);
    }
  }
  const f = c.filter;
  const want = [...finalFlags.values()].filter((fl) => flagMatch(f, fl)).map((fl) => fl.key + 'v' + fl.version + (fl.enabled ? '+' : '-')).sort().join(' ');
  const have = [...view.values()].filter((fl) => flagMatch(f, fl)).map((fl) => fl.key + 'v' + fl.version + (fl.enabled ? '+' : '-')).sort().join(' ');
  if (want !== have) violation(c, 'flags', `final flag view differs from the store:\n      store:  ${want || '-'}\n      client: ${have || '-'}`);
}

// Caught up: every live client at the head of every channel it asked for.
function caughtUp(era) {
  for (const c of clients) {
    if (!c.alive || !c.conn) return false;
    for (const [ch, list] of c.obs) {
      const fc = era.ch.get(ch);
      if (!fc || !fc.meta) continue;
      const ep = fc.get(fc.meta.epoch);
      if (!ep || !ep.list.length) continue;
      const f = c.filter;
      const sel = (ev) => ch !== 'flags' || flagMatch(f, ev.flag) || flagMatch(f, ev.prev);
      const lastSel = [...ep.list].reverse().find(sel);
      if (!lastSel) continue;
      const evs = list.filter((o) => o.kind === 'ev' && o.epoch === fc.meta.epoch);
      const lastGot = evs.length ? evs[evs.length - 1].offset : -1;
      const snapAfter = list.length && list[list.length - 1].kind === 'snap';
      if (lastGot < lastSel.offset && !(ch === 'flags' && snapAfter)) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------- main
async function main() {
  R.port = await freePort();
  PUB.port = await freePort();
  PUB.url = `http://127.0.0.1:${PUB.port}`;
  for (let i = 0; i < NGW; i++) {
    const port = await freePort();
    GWS.push({ i, port, url: `http://127.0.0.1:${port}`, wsurl: `ws://127.0.0.1:${port}` });
  }
  const plan = schedule();
  // first pass covers every kind once, in a seeded order
  const order = firstPass(FAULTS);
  for (let i = 0; i < Math.min(order.length, plan.length); i++) plan[i].kind = order[i];
  console.log(`chaos: seed=${SEED} seconds=${SECONDS} clients=${NCLIENTS} gateways=${NGW} faults=${FAULTS.join(',')}`);
  console.log('chaos: schedule ' + plan.map((p) => `${p.at}s:${p.kind}`).join(' '));
  console.log('chaos: temp dir ' + TMP);

  await redisStart(true);
  await startPublisher();
  for (const g of GWS) await gwStart(g);
  makeClients();
  for (const c of clients) { c.start(); await sleep(20); }
  await waitFor('clients connected', async () => clients.every((c) => c.conn), 30);
  const pubDone = publisherLoop();
  log(`${clients.length} clients: ` + clients.map((c) => `c${c.id}=${c.transport}${c.fmt ? '/' + c.fmt : ''}:${c.kind}[${c.filter.channels.join(',')}${c.filter.keys.length ? ' keys=' + c.filter.keys : ''}${c.filter.tags.length ? ' tags=' + c.filter.tags : ''}${c.filter.ids.length ? ' ids=' + c.filter.ids : ''}]`).join(' '));

  let skipped = 0;
  for (const f of plan) {
    // a slow machine slides the schedule; the quiet period stays
    if (now() > T0 + (SECONDS - QUIET) * 1000) { skipped++; continue; }
    const wait = T0 + f.at * 1000 - now();
    if (wait > 0) await sleep(wait);
    const t = now();
    try {
      const d = await fault(f);
      faultCount[f.kind] = (faultCount[f.kind] || 0) + 1;
      if (f.kind === 'rollback' || f.kind === 'flushall') rewrites.push(t);
      log(`fault ${f.kind} ${d} (${now() - t}ms)`);
    } catch (e) {
      log(`fault ${f.kind} failed: ${e.message}`);
      violations.push({ client: null, ch: '-', msg: `fault ${f.kind} could not be injected/recovered: ${e.message}` });
      // make sure everything is up again
      if (!procs.has(R.proc)) await redisStart(true).catch(() => {});
    }
  }
  // quiet period: everything up, every client back, no more faults
  for (const g of GWS) if (!procs.has(g.proc)) await gwStart(g);
  for (const c of clients) if (!c.alive) c.start();
  const quietAt = Math.max(now(), T0 + (SECONDS - QUIET) * 1000);
  await sleep(Math.max(0, T0 + (SECONDS - QUIET / 2) * 1000 - now()));
  pubStop = true;
  await pubDone;
  log(`publisher stopped: ${pubStats.ok} calls ok, ${pubStats.failed} failed`);
  // settle: all clients caught up with the store, or 60 s
  let final;
  const settleEnd = now() + 60000;
  for (;;) {
    final = await readTruth('final');
    eras.pop();
    if (caughtUp(final) || now() > settleEnd) break;
    await sleep(1000);
  }
  await sleep(1500);   // a last moment for in-flight frames
  final = await readTruth('final');
  const flagsRes = await api('GET', '/api/v1/flags');
  const finalFlags = new Map((flagsRes.json && flagsRes.json.flags || []).map((fl) => [fl.key, fl]));
  for (const c of clients) {
    if (c.alive && !c.conn) { violation(c, '-', 'not connected at the end (after the settle period)'); c.alive = false; }
    checkClient(c, final);
    checkView(c, finalFlags);
  }
  // the bad writer's offsets are counted
  let rejected = 0;
  for (const g of GWS) rejected += (await gwMetric(g, 'flagcast_gateway_offsets_rejected_total')) || 0;
  void quietAt;
  // a sanitizer report or a crash message in any daemon's log (ASan builds)
  for (const f of fs.readdirSync(TMP).filter((n) => n.endsWith('.log'))) {
    const text = fs.readFileSync(path.join(TMP, f), 'utf8');
    const m = text.match(/.*(Sanitizer|runtime error:).*/);
    if (m) violations.push({ client: null, ch: '-', msg: `${f}: ${m[0].slice(0, 300)}` });
  }

  for (const v of knownGaps.slice(0, 20)) {
    console.log(`KNOWN GAP c${v.client.id} (${v.client.transport}${v.client.fmt ? '/' + v.client.fmt : ''} ${v.client.kind} tags=${v.client.filter.tags} keys=${v.client.filter.keys} ids=${v.client.filter.ids}) ${v.ch}: ${v.msg}`);
    const tr = v.client.transcript, at = v.line === null ? tr.length - 1 : v.line;
    console.log('      ' + tr.slice(Math.max(0, at - 6), at + 2).join('\n      '));
  }
  const fsum = Object.entries(faultCount).map(([k, v]) => `${k}=${v}`).join(',');
  const nf = Object.values(faultCount).reduce((a, b) => a + b, 0);
  console.log(`chaos: clients=${clients.length} connects=${clients.reduce((a, c) => a + c.connects, 0)} frames=${stats.frames} snapshots=${stats.snapshots} resyncs=${JSON.stringify(stats.resyncs)} publisher ok=${pubStats.ok} failed=${pubStats.failed} offsets_rejected(now-running gateways)=${rejected} bad_writes=${badWrites} eras=${eras.length}`);
  console.log(`chaos: faults injected ${nf}: ${fsum}${skipped ? ` (${skipped} scheduled ones skipped: the schedule slid into the quiet period)` : ''}`);
  if (violations.length) {
    const shown = new Set();
    for (const v of violations.slice(0, 50)) {
      console.log(`VIOLATION ${v.client ? 'c' + v.client.id + ' (' + v.client.transport + (v.client.fmt ? '/' + v.client.fmt : '') + ' ' + v.client.kind + ' [' + v.client.filter.channels.join(',') + '])' : 'system'} ${v.ch}: ${v.msg}`);
      if (v.client) {
        const tr = v.client.transcript;
        const at = v.line === null || v.line === undefined ? tr.length - 1 : v.line;
        const key = at;
        if (!shown.has(v.client) || v.line !== null) {
          shown.add(v.client);
          const from = Math.max(0, at - 25), to = Math.min(tr.length, at + 6);
          console.log(`    transcript, frames ${from}..${to - 1} of ${tr.length} (the violation at ${at}):\n      ` + tr.slice(from, to).map((l, i) => (from + i === at ? '>> ' : '   ') + l).join('\n      '));
        }
        void key;
      }
    }
    if (violations.length > 50) console.log(`... and ${violations.length - 50} more`);
    for (const c of new Set(violations.map((v) => v.client).filter(Boolean)))
      fs.writeFileSync(path.join(TMP, `client-${c.id}.txt`), c.transcript.join('\n') + '\n');
    console.log(`chaos: full transcripts of the clients above in ${TMP}/client-N.txt`);
    console.log(`chaos: FAIL seed=${SEED} events_checked=${stats.events} faults=${nf} violations=${violations.length} known_gaps=${knownGaps.length}`);
    cleanupAndExit(1);
  }
  console.log(`chaos: OK seed=${SEED} events_checked=${stats.events} faults=${nf} violations=0 known_gaps=${knownGaps.length}`);
  cleanupAndExit(0);
}

main().catch((e) => { console.error('chaos: setup failed: ' + (e && e.stack || e)); cleanupAndExit(3); });
