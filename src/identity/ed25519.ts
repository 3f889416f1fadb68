/**
 * A node's signing identity: the Ed25519 key of its libp2p peer id. Rows a node owns in the
 * replicated store (its overlay entries, its address usage) carry its signature, and any
 * replica checks it against the peer id the masters pinned for that node (see
 * keyspace/signed-rows.ts), however many hops the write travelled. The peer id is the
 * identity: an Ed25519 peer id embeds its public key, so nothing else has to be distributed.
 *
 * Signing and verifying use node:crypto (OpenSSL, synchronous, ~20 µs to sign and ~60 µs to
 * verify on this machine's class of CPU) rather than the libp2p key objects: their verify
 * returns a promise, and the store's admission check runs inside a synchronous join.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { PrivateKey } from '@libp2p/interface';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';

/** Signs payloads as one identity (a libp2p peer id string). */
export interface Signer {
  readonly identity: string;
  sign(payload: Uint8Array): Uint8Array;
}

/** Checks that `identity` signed `payload`. */
export interface Verifier {
  verify(identity: string, payload: Uint8Array, signature: Uint8Array): boolean;
}

/** DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

class Ed25519Signer implements Signer {
  constructor(
    readonly identity: string,
    private readonly key: KeyObject,
  ) {}

  sign(payload: Uint8Array): Uint8Array {
    return sign(null, payload, this.key);
  }
}

/** The signer of a 32-byte Ed25519 seed (tests and the simulator derive seeds from their rng). */
export function signerFromSeed(seed: Uint8Array): Signer {
  if (seed.byteLength !== 32) throw new RangeError(`an Ed25519 seed is 32 bytes, not ${seed.byteLength}`);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const x = createPublicKey(key).export({ format: 'jwk' }).x as string;
  const identity = peerIdFromPublicKey(publicKeyFromRaw(Buffer.from(x, 'base64url'))).toString();
  return new Ed25519Signer(identity, key);
}

/** The signer of a node's libp2p private key (Ed25519 only: the key lashup generates). */
export function signerFromLibp2pKey(privateKey: PrivateKey): Signer {
  if (privateKey.type !== 'Ed25519') throw new TypeError(`row signatures need an Ed25519 peer key, not ${privateKey.type}`);
  // An Ed25519 private key's raw form is the 32-byte seed followed by the public key.
  return signerFromSeed(privateKey.raw.subarray(0, 32));
}

/**
 * Verifies against the public key inside a peer id. Keys are decoded once and cached (bounded;
 * a peer id that is not an Ed25519 one is cached as such and never verifies).
 */
export class PeerIdVerifier implements Verifier {
  private readonly keys = new Map<string, KeyObject | null>();
  /**
   * Signatures already found good, with their payload: the overlay agent checks every entry of
   * a map at each recomputation, and a verification costs ~60 µs, so a thousand entries would
   * cost 60 ms per store change without it. A hit still compares the payload byte for byte.
   */
  private readonly good = new Map<string, Uint8Array>();

  constructor(private readonly maxCached = 8192) {}

  verify(identity: string, payload: Uint8Array, signature: Uint8Array): boolean {
    if (signature.byteLength !== 64) return false;
    const id = `${identity} ${Buffer.from(signature).toString('base64')}`;
    const known = this.good.get(id);
    if (known !== undefined && Buffer.compare(known, payload) === 0) return true;
    const key = this.keyOf(identity);
    if (key === null || !verify(null, payload, key, signature)) return false;
    if (this.good.size >= this.maxCached * 2) this.good.delete(this.good.keys().next().value as string);
    this.good.set(id, payload.slice());
    return true;
  }

  private keyOf(identity: string): KeyObject | null {
    const cached = this.keys.get(identity);
    if (cached !== undefined) return cached;
    let key: KeyObject | null = null;
    try {
      const peer = peerIdFromString(identity);
      if (peer.type === 'Ed25519') key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(peer.publicKey.raw).toString('base64url') }, format: 'jwk' });
    } catch {
      key = null;
    }
    if (this.keys.size >= this.maxCached) this.keys.delete(this.keys.keys().next().value as string);
    this.keys.set(identity, key);
    return key;
  }
}
