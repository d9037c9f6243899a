// ofrep_node.js GATEWAY_URL: the stock OpenFeature server SDK with the stock
// OFREP provider against the gateway; prints what it read on one line.
'use strict';
const { OpenFeature } = require('@openfeature/server-sdk');
const { OFREPProvider } = require('@openfeature/ofrep-provider');

async function main() {
    const base = process.argv[2];
    await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: base }));
    const client = OpenFeature.getClient();
    const ctx = { targetingKey: 'u1', tier: 'pro' };
    const dark = await client.getBooleanDetails('dark', false, ctx);
    const color = await client.getStringDetails('color', 'none', ctx);
    const missing = await client.getStringDetails('no-such-flag', 'fallback', ctx);
    if (dark.errorCode || color.errorCode)
        throw new Error('unexpected error: ' + JSON.stringify({ dark, color }));
    if (missing.errorCode !== 'FLAG_NOT_FOUND')
        throw new Error('missing flag: ' + JSON.stringify(missing));
    console.log(`dark=${dark.value} color=${color.value} missing=${missing.value}`);
    await OpenFeature.close();
}
main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
