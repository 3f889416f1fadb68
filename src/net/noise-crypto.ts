/**
 * X25519 for the Noise handshake without re-parsing keys: the library's Node.js crypto wraps
 * every raw key in PKCS#8/SPKI DER and has OpenSSL 3 decode it again for each Diffie-Hellman
 * (three per handshake side, plus a key generation exported to DER). OpenSSL 3's DER decoders
 * are slow: measured here, 400 µs per DH that way against 36 µs with the private key kept as a
 * KeyObject and the peer's public key imported as a JWK (a raw-key import in OpenSSL). Key
 * imports were 12 % of a 60-node cluster's CPU while it formed, most of it in these handshakes.
 *
 * Key pairs come from 32 random bytes imported as a private JWK, not from generateKeyPairSync.
 * Past bug: exporting a freshly generated key as a JWK deadlocks Node.js 20 now and then. The
 * export holds the key's mutex while it allocates the JWK's strings; when that allocation runs
 * a garbage collection which finalizes the key generation job that made the key (garbage as
 * soon as generateKeyPairSync returned), the job's destructor takes the same mutex, and the
 * main thread waits on itself for good (gdb: KeyObjectHandle::ExportJWK -> GC ->
 * ~KeyGenJob -> uv_mutex_lock). A 200-node cluster bench lost a 25-node worker process to it
 * (no CPU, no answer, RSS frozen); a loop of generate + export under a 1 MiB young generation
 * hangs within a few thousand key pairs. An imported key has no generation job, and was also
 * faster here (51 µs per key pair with its public key, against ~60 µs).
 *
 * Everything else (hashing, HKDF, ChaCha20-Poly1305) is the library's default implementation;
 * only where the keys come from changes, so the handshake's bytes are the same.
 */
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto';
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto';
import type { ICryptoInterface } from '@chainsafe/libp2p-noise';

/**
 * Private keys this module generated, by the raw key array handed to the library. The library
 * passes that same array back for each DH (its key pair objects live as long as the handshake,
 * or the transport for the static key), so a WeakMap frees them with it.
 */
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

type KeyBytes = Parameters<ICryptoInterface['generateX25519SharedKey']>[1];

const raw = (bytes: KeyBytes): Uint8Array => (bytes instanceof Uint8Array ? bytes : bytes.subarray());

/**
 * The `x` of an imported private key's JWK: Node.js requires the member but reads only `d` for a
 * private OKP key (the public key is derived from it; test/unit/noise-crypto.test.ts checks this
 * against RFC 7748's vectors, so a Node.js that starts to read it fails there, not in a cluster).
 */
const UNUSED_X = Buffer.alloc(32).toString('base64url');

function fromJwk(value: string | undefined, what: string): Uint8Array {
  if (value === undefined) throw new Error(`X25519 ${what} key export had no value`);
  return new Uint8Array(Buffer.from(value, 'base64url'));
}

/** An X25519 private key from its 32 raw bytes (clamped by OpenSSL when used, as RFC 7748 says). */
export function x25519PrivateKey(secret: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(secret).toString('base64url'), x: UNUSED_X }, format: 'jwk' });
}

export const fastNoiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  generateX25519KeyPair() {
    const secret = new Uint8Array(randomBytes(32));
    const privateKey = x25519PrivateKey(secret);
    const keyPair = { publicKey: fromJwk(createPublicKey(privateKey).export({ format: 'jwk' }).x, 'public'), privateKey: secret };
    privateKeys.set(keyPair.privateKey, privateKey);
    return keyPair;
  },
  generateX25519SharedKey(privateKey, publicKey) {
    const mine = privateKey instanceof Uint8Array ? privateKeys.get(privateKey) : undefined;
    // A key pair from elsewhere (a configured static key): the library's own path.
    if (mine === undefined) return defaultCrypto.generateX25519SharedKey(privateKey, publicKey);
    const theirs = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw(publicKey)).toString('base64url') }, format: 'jwk' });
    return diffieHellman({ privateKey: mine, publicKey: theirs });
  },
};
