// resp.js — a minimal Redis client for the chaos checker: one TCP
// connection, commands pipelined in order, replies parsed as RESP2 with bulk
// strings kept as Buffers (history entries are binary msgpack). Every
// command has a deadline, so a stopped Redis cannot hang the checker.
'use strict';
const net = require('net');

function encode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

// parse(buf, i) → [value, next] or null when incomplete.
function parse(buf, i) {
  if (i >= buf.length) return null;
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const t = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, eol);
  switch (t) {
    case '+': return [line, eol + 2];
    case '-': return [new Error(line), eol + 2];
    case ':': return [parseInt(line, 10), eol + 2];
    case '$': {
      const n = parseInt(line, 10);
      if (n < 0) return [null, eol + 2];
      if (buf.length < eol + 2 + n + 2) return null;
      return [buf.subarray(eol + 2, eol + 2 + n), eol + 2 + n + 2];
    }
    case '*': {
      const n = parseInt(line, 10);
      if (n < 0) return [null, eol + 2];
      const out = [];
      let j = eol + 2;
      for (let k = 0; k < n; k++) {
        const r = parse(buf, j);
        if (!r) return null;
        out.push(r[0]);
        j = r[1];
      }
      return [out, j];
    }
    default: throw new Error('bad RESP type ' + t);
  }
}

class Redis {
  constructor(port, timeoutMs = 5000) { this.port = port; this.timeoutMs = timeoutMs; }
  connect() {
    return new Promise((resolve, reject) => {
      this.sock = net.createConnection({ host: '127.0.0.1', port: this.port });
      this.buf = Buffer.alloc(0);
      this.waiting = [];
      const t = setTimeout(() => { this.sock.destroy(); reject(new Error('redis connect timeout')); }, this.timeoutMs);
      this.sock.once('connect', () => { clearTimeout(t); resolve(this); });
      this.sock.on('error', (e) => { clearTimeout(t); this.fail(e); reject(e); });
      this.sock.on('close', () => this.fail(new Error('redis connection closed')));
      this.sock.on('data', (d) => {
        this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
        let r;
        while (this.waiting.length && (r = parse(this.buf, 0))) {
          this.buf = this.buf.subarray(r[1]);
          const w = this.waiting.shift();
          clearTimeout(w.t);
          if (r[0] instanceof Error) w.reject(r[0]); else w.resolve(r[0]);
        }
      });
    });
  }
  fail(e) {
    const ws = this.waiting || [];
    this.waiting = [];
    for (const w of ws) { clearTimeout(w.t); w.reject(e); }
  }
  cmd(...args) {
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      w.t = setTimeout(() => { this.fail(new Error('redis timeout: ' + args[0])); this.sock.destroy(); }, this.timeoutMs);
      this.waiting.push(w);
      this.sock.write(encode(args));
    });
  }
  close() { try { this.sock.destroy(); } catch (e) { /* gone */ } }
}

// once(port, ...args): one command on a fresh connection.
async function once(port, ...args) {
  const r = new Redis(port);
  await r.connect();
  try { return await r.cmd(...args); } finally { r.close(); }
}

module.exports = { Redis, once };
