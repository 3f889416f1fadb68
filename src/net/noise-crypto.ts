/**
 * X25519 for the Noise handshake without re-parsing keys: the library's Node.js crypto wraps
 * every raw key in PKCS#8/SPKI DER and has OpenSSL 3 decode it again for each Diffie-Hellman
 * (three per handshake side, plus a key generation exported to DER). OpenSSL 3's DER decoders
 * are slow: measured here, 400 µs per DH that way against 36 µs with the private key kept as a
 * KeyObject and the peer's public key imported as a JWK (a raw-key import in OpenSSL). Key
 * imports were 12 % of a 60-node cluster's CPU while it formed, most of it in these handshakes.
 *
 * Everything else (hashing, HKDF, ChaCha20-Poly1305) is the library's default implementation;
 * only where the keys come from changes, so the handshake's bytes are the same.
 */
import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
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

function fromJwk(value: string | undefined, what: string): Uint8Array {
  if (value === undefined) throw new Error(`X25519 ${what} key export had no value`);
  return new Uint8Array(Buffer.from(value, 'base64url'));
}

export const fastNoiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  generateX25519KeyPair() {
    const { publicKey, privateKey } = generateKeyPairSync('x25519');
    const keyPair = { publicKey: fromJwk(publicKey.export({ format: 'jwk' }).x, 'public'), privateKey: fromJwk(privateKey.export({ format: 'jwk' }).d, 'private') };
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
