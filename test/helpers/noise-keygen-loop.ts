/**
 * Makes key pairs with the Noise handshake's X25519 (src/net/noise-crypto.ts) in a loop and
 * prints "done <count>" when finished. Run in a child with a tiny young generation
 * (--max-semi-space-size=1) so garbage collections come often: the generate-then-export-as-JWK
 * pattern this replaced deadlocked a process under those conditions within a few thousand pairs.
 * Usage: noise-keygen-loop.ts COUNT
 */
import { fastNoiseCrypto } from '../../src/net/noise-crypto.js';

const count = Number(process.argv[2] ?? 20_000);
let keep: Uint8Array[] = [];
for (let i = 0; i < count; i++) {
  const pair = fastNoiseCrypto.generateX25519KeyPair();
  // Garbage alongside, as a busy daemon makes: collections run in the middle of the exports.
  keep.push(pair.publicKey, new Uint8Array(256));
  if (keep.length > 512) keep = [];
}
process.stdout.write(`done ${count}\n`);
