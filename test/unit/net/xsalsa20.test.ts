/**
 * lashup's xsalsa20 (vendor/xsalsa20, put in place of the npm package for @libp2p/pnet by
 * package.json "overrides"): a byte stream equal to XSalsa20 computed in one piece, whatever the
 * chunking, and no shared state that runs out after a few thousand connections (the package it
 * replaces threw after 5,107 connections into one process, and the throw killed the process).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { xsalsa20 as oneShot } from '@noble/ciphers/salsa.js';
import t from 'tap';
import xsalsa20 from 'xsalsa20';

t.test('the stream equals one-shot XSalsa20 for any chunking', async (t) => {
  for (let trial = 0; trial < 50; trial++) {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const stream = xsalsa20(nonce, key);
    const chunks = Array.from({ length: 12 }, () => randomBytes(randomInt(0, trial % 2 === 0 ? 200 : 9000)));
    const streamed = Buffer.concat(chunks.map((c) => Buffer.from(stream.update(c))));
    const whole = Buffer.from(oneShot(key, nonce, Buffer.concat(chunks)));
    if (!streamed.equals(whole)) t.fail(`trial ${trial}: the stream differs from the one-shot cipher`);
  }
  t.pass('50 random chunkings agree');
  const out = new Uint8Array(5);
  t.equal(xsalsa20(Buffer.alloc(24), Buffer.alloc(32)).update(Buffer.alloc(5), out), out, 'writes into a given output');
  t.throws(() => xsalsa20(Buffer.alloc(23), Buffer.alloc(32)), /nonce must be at least 24 bytes/);
  t.throws(() => xsalsa20(Buffer.alloc(24), Buffer.alloc(31)), /key must be at least 32 bytes/);
});

t.test('twenty thousand connections of ciphers (two each, forty open at a time), none finalized', async (t) => {
  const key = Buffer.alloc(32, 1);
  const live: { update(input: Uint8Array): Uint8Array }[] = [];
  const frame = Buffer.alloc(1500);
  for (let c = 0; c < 20_000; c++) {
    live.push(xsalsa20(randomBytes(24), key), xsalsa20(randomBytes(24), key));
    if (live.length > 40) live.splice(0, 2);
    for (const cipher of live.slice(-4)) cipher.update(frame);
  }
  t.pass('no cipher threw');
});

t.test('@libp2p/pnet loads this module, not the npm package', async (t) => {
  const fromPnet = createRequire(join(process.cwd(), 'node_modules', '@libp2p', 'pnet', 'package.json'));
  t.equal(realpathSync(fromPnet.resolve('xsalsa20')), join(process.cwd(), 'vendor', 'xsalsa20', 'index.js'));
});
