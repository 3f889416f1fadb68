/**
 * Cluster keys. Every node holds a keyring: one primary key, with which it encrypts, and any
 * number of accepted keys, with which it also decrypts, so a key can be rotated without
 * downtime (add the new key everywhere, make it primary everywhere, then drop the old one).
 *
 * A cluster key is 32 random bytes, written as base64 (`lashup keygen`). Purpose-specific keys
 * are derived from it with HKDF-SHA256, so the UDP cipher key and the libp2p private-network key
 * never coincide.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { TransportError, TransportErrorCode } from './errors.js';

export const CLUSTER_KEY_BYTES = 32;

export interface Keyring {
  /** Encrypts and decrypts. */
  readonly primary: Uint8Array;
  /** Decrypt only (keys being rotated in or out). */
  readonly accepted: readonly Uint8Array[];
}

/** A new random cluster key, base64. */
export function generateClusterKey(): string {
  return randomBytes(CLUSTER_KEY_BYTES).toString('base64');
}

/** Decodes one base64 cluster key; `field` names it in errors. */
export function parseClusterKey(text: unknown, field = 'clusterKey'): Uint8Array {
  const bytes = typeof text === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : undefined;
  if (bytes === undefined || bytes.length !== CLUSTER_KEY_BYTES) {
    throw new TransportError(
      TransportErrorCode.InvalidKey,
      `${field} is not a cluster key: expected ${CLUSTER_KEY_BYTES} bytes in base64 (44 characters, as \`lashup keygen\` prints)${typeof text === 'string' ? `, found ${text.length} characters` : ''}`,
      { field },
    );
  }
  return new Uint8Array(bytes);
}

/** A keyring from base64 keys, the first one primary. */
export function keyringFrom(keys: readonly string[], field = 'clusterKeys'): Keyring {
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new TransportError(TransportErrorCode.InvalidKey, `${field} is empty; at least one cluster key is required (the first is primary)`, { field });
  }
  const parsed = keys.map((k, i) => parseClusterKey(k, `${field}[${i}]`));
  return { primary: parsed[0] as Uint8Array, accepted: parsed.slice(1) };
}

/** A 32-byte key for one purpose, derived from a cluster key. */
export function deriveKey(clusterKey: Uint8Array, purpose: string, label = ''): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', clusterKey, Buffer.from(`lashup:${label}`), Buffer.from(purpose), 32));
}

/** The libp2p private-network pre-shared key file content, derived from a cluster key. */
export function pskFromClusterKey(clusterKey: Uint8Array, label: string): Uint8Array {
  const hex = Buffer.from(deriveKey(clusterKey, 'libp2p-pnet-psk', label)).toString('hex');
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`);
}
