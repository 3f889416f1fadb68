import { execFile, type ExecFileException } from 'node:child_process';
import { createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto';
import { Uint8ArrayList } from 'uint8arraylist';
import { fastNoiseCrypto, x25519PrivateKey } from '../../../src/net/noise-crypto.js';

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

t.test("a private key is imported from its bytes: RFC 7748's X25519 vectors (public keys and the shared secret)", async (t) => {
  const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
  const alice = x25519PrivateKey(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'));
  const bob = x25519PrivateKey(Buffer.from('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'hex'));
  const publicOf = (key: KeyObject): string => hex(Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x as string, 'base64url'));
  t.equal(publicOf(alice), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', "Alice's public key, derived from d alone");
  t.equal(publicOf(bob), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', "Bob's public key");
  t.equal(hex(diffieHellman({ privateKey: alice, publicKey: createPublicKey(bob) })), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742', 'the shared secret');
});

t.test('key pairs made while garbage collections run often do not hang the process', async (t) => {
  // Past bug: generateKeyPairSync + export as JWK deadlocked Node.js 20 (see noise-crypto.ts).
  // A child with a 1 MiB young generation makes 20,000 pairs; a hang is killed at the limit.
  const script = fileURLToPath(new URL('../../helpers/noise-keygen-loop.ts', import.meta.url));
  // execFile's own time limit ends a hung child (SIGKILL) and reports the signal.
  const { error, out } = await new Promise<{ error: ExecFileException | null; out: string }>((resolve) =>
    execFile(process.execPath, [...process.execArgv, '--max-semi-space-size=1', script, '20000'], { timeout: 120_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout) =>
      resolve({ error, out: stdout }),
    ),
  );
  t.equal(error?.signal ?? null, null, 'the child finished by itself (not killed at the limit)');
  t.equal(error?.code ?? 0, 0);
  t.equal(out.trim(), 'done 20000');
});
