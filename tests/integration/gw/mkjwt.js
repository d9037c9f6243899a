// mkjwt.js SECRET CLAIMS-JSON [ALG] — prints a JWT for the tests (node's
// crypto; no library). ALG HS256 (default) signs with SECRET as the HMAC
// key; RS256 signs with the PEM private key in the file SECRET; any other
// ALG is written into the header as given and signed like HS256 (e.g.
// "none": then the signature is empty), to make tokens the gateway must
// refuse. A claim "exp"/"nbf" given as a string
// "+N" / "-N" is now + N / now - N seconds.
'use strict';
const crypto = require('crypto');

const [secret, claimsJson, alg = 'HS256'] = process.argv.slice(2);
const b64 = (b) => Buffer.from(b).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const claims = JSON.parse(claimsJson);
for (const k of ['exp', 'nbf', 'iat'])
  if (typeof claims[k] === 'string') claims[k] = now + parseInt(claims[k], 10);
const head = b64(JSON.stringify({ alg, typ: 'JWT' })) + '.' + b64(JSON.stringify(claims));
let sig;
if (alg === 'none') sig = '';
else if (alg === 'RS256')
  sig = crypto.sign('sha256', Buffer.from(head), require('fs').readFileSync(secret, 'utf8')).toString('base64url');
else sig = crypto.createHmac('sha256', secret).update(head).digest('base64url');
process.stdout.write(head + '.' + sig + '\n');
