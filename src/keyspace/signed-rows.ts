/**
 * Signed rows: values a node writes under a field of its own (its overlay entry, its address
 * usage) carry its signature, so that any replica can tell the owner's write from another
 * member's, however the write reached it (gossip relays it, anti-entropy copies it, and any
 * holder of the cluster key can publish a delta naming any key, field and CRDT actor).
 *
 * A signed value is the row's own fields plus `sig: { ts, s }`: `s` is the owner's Ed25519
 * signature (base64) over the key, the field, `ts` and the canonical JSON of the other fields.
 * `ts` grows with every write of the row (the store's hybrid clock, and at least one more than
 * the row's last signed value), so an old signed value replayed over a newer one is refused:
 * without it a member could put back an agent's entry from before its underlay address moved.
 *
 * Pure: signing and verifying are handed in (src/identity implements them with node:crypto).
 */
import { plainEquals, type PlainValue } from '../crdt/index.js';
import type { KvStore } from '../kv/index.js';

/** The field of a signed value holding its signature. */
export const ROW_SIGNATURE_FIELD = 'sig';

/** Signs as one identity (a libp2p peer id). */
export interface RowSigner {
  readonly identity: string;
  sign(payload: Uint8Array): Uint8Array;
}

/** Checks an identity's signature. */
export interface RowVerifier {
  verify(identity: string, payload: Uint8Array, signature: Uint8Array): boolean;
}

export interface RowSignature {
  /** Write time of the row (µs, hybrid clock), strictly growing per row. */
  readonly ts: number;
  /** Base64 Ed25519 signature. */
  readonly s: string;
}

/** JSON with object keys sorted at every level: one text per value, whatever order fields came in. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value instanceof Uint8Array) return JSON.stringify({ bytes: Buffer.from(value).toString('base64') });
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`)
    .join(',')}}`;
}

/** The row's fields without its signature (undefined when `raw` is not an object). */
export function unsignedPart(raw: unknown): Record<string, unknown> | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (k !== ROW_SIGNATURE_FIELD) out[k] = v;
  return out;
}

/** The signature a value carries, when it has a well-formed one. */
export function rowSignature(raw: unknown): RowSignature | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const sig = (raw as Record<string, unknown>)[ROW_SIGNATURE_FIELD] as Record<string, unknown> | undefined;
  if (sig === null || typeof sig !== 'object') return undefined;
  const { ts, s } = sig;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0 || typeof s !== 'string' || s.length === 0 || s.length > 128) return undefined;
  return { ts, s };
}

function payload(key: string, field: string, ts: number, unsigned: Record<string, unknown>): Uint8Array {
  return new TextEncoder().encode(`lashup-row/1\n${key}\n${field}\n${ts}\n${canonicalJson(unsigned)}`);
}

/** `value` signed as row `field` of `key` at `ts`. */
export function signRow(signer: RowSigner, key: string, field: string, value: Record<string, unknown>, ts: number): Record<string, unknown> {
  const unsigned = unsignedPart(value) ?? {};
  const s = Buffer.from(signer.sign(payload(key, field, ts, unsigned))).toString('base64');
  return { ...unsigned, [ROW_SIGNATURE_FIELD]: { ts, s } };
}

/**
 * Why `raw` is not row `field` of `key` signed by `identity` (undefined: it is). Reasons name
 * what is wrong, for logs and `lashup routes`.
 */
export function rowSignatureProblem(verifier: RowVerifier, identity: string, key: string, field: string, raw: unknown): string | undefined {
  const unsigned = unsignedPart(raw);
  if (unsigned === undefined) return `${key} ${field} is not an object`;
  const sig = rowSignature(raw);
  if (sig === undefined) return `${key} ${field} carries no signature (expected ${ROW_SIGNATURE_FIELD}: { ts, s })`;
  const bytes = Buffer.from(sig.s, 'base64');
  if (!verifier.verify(identity, payload(key, field, sig.ts, unsigned), bytes)) return `${key} ${field} is not signed by its owner's identity ${identity}`;
  return undefined;
}

/**
 * Writes `value` at `key`'s `field`, signed, unless the field holds an equal value with a
 * signature already; true when written. The signature time is the store's next marker, and at
 * least one more than the field's current signature (a clock stepped back must not make the
 * owner's new write look older than its last one).
 */
export function writeSignedIfChanged(kv: KvStore, signer: RowSigner, key: string, field: string, value: Record<string, unknown>): boolean {
  const current = kv.get(key)?.[field];
  const unsigned = unsignedPart(value) ?? {};
  const held = rowSignature(current);
  if (held !== undefined && plainEquals(unsignedPart(current) as PlainValue, unsigned as PlainValue)) return false;
  const marker = kv.marker();
  const ts = Math.max(marker.ts, (held?.ts ?? -1) + 1);
  const signed = signRow(signer, key, field, unsigned, ts);
  kv.update(key, (m) => m.lww(field).write(marker, signed));
  return true;
}
