import t from 'tap';
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto';
import { Uint8ArrayList } from 'uint8arraylist';
import { fastNoiseCrypto } from '../../../src/net/noise-crypto.js';

t.test('the cached-key X25519 agrees with the library default, both ways and for lists', async (t) => {
  for (let i = 0; i < 20; i++) {
    const mine = fastNoiseCrypto.generateX25519KeyPair();
    const theirs = defaultCrypto.generateX25519KeyPair();
    t.equal(mine.publicKey.byteLength, 32);
    t.equal(mine.privateKey.byteLength, 32);
    const fast = Buffer.from(fastNoiseCrypto.generateX25519SharedKey(mine.privateKey, theirs.publicKey));
    const reference = Buffer.from(defaultCrypto.generateX25519SharedKey(mine.privateKey, theirs.publicKey));
    const other = Buffer.from(defaultCrypto.generateX25519SharedKey(theirs.privateKey, mine.publicKey));
    if (!fast.equals(reference) || !fast.equals(other)) {
      t.fail(`pair ${i}: shared keys differ`);
      return;
    }
    const asList = Buffer.from(fastNoiseCrypto.generateX25519SharedKey(mine.privateKey, new Uint8ArrayList(theirs.publicKey.subarray(0, 7), theirs.publicKey.subarray(7))));
    t.ok(asList.equals(reference), 'a public key in pieces gives the same key');
  }
});

t.test('a key pair made elsewhere (a configured static key) still works, through the default path', async (t) => {
  const seeded = fastNoiseCrypto.generateX25519KeyPairFromSeed(new Uint8Array(32).fill(7));
  const peer = fastNoiseCrypto.generateX25519KeyPair();
  const a = Buffer.from(fastNoiseCrypto.generateX25519SharedKey(seeded.privateKey, peer.publicKey));
  const b = Buffer.from(fastNoiseCrypto.generateX25519SharedKey(peer.privateKey, seeded.publicKey));
  t.ok(a.equals(b));
  t.equal(a.byteLength, 32);
});

t.test('a bad public key is refused, as with the default', async (t) => {
  const mine = fastNoiseCrypto.generateX25519KeyPair();
  t.throws(() => fastNoiseCrypto.generateX25519SharedKey(mine.privateKey, new Uint8Array(5)));
  t.throws(() => defaultCrypto.generateX25519SharedKey(mine.privateKey, new Uint8Array(5)));
});
