/**
 * Wire messages of the replicated store (msgpack, version 1).
 *
 * Push (gossipsub, or any broadcast):
 *   delta  [1, version, key, crdt]                      crdt = a CRDT message (src/crdt codec)
 *
 * Anti-entropy, on one stream per round (see anti-entropy.ts):
 *   hello   [10, version, salt, sums]                   sums: 4 bytes LE per level-1 bucket (256)
 *   equal   [11]
 *   subs    [12, last, [bucket, sums, ...]]             16 level-2 sums of each differing bucket
 *   keyreq  [13, last, [bucket, mask, ...]]             mask: the differing level-2 buckets (16 bits)
 *   keys    [14, last, [key, digest, ...]]              the responder's keys in those leaves
 *   want    [15, last, [[key, context | null, live | null, state | null], ...]]
 *                                                       (a small key travels whole: state, no context)
 *   repair  [16, last, [[key, delta | null, context | null, live | null], ...]]
 *                                                       (context null: the delta is a whole state)
 *   final   [17, last, [[key, delta, context], ...]]
 *
 * `context` and `live` are causal contexts, `delta` a CRDT state, each in the CRDT codec (an
 * OR-map with an empty store carries a bare context). Lists are chunked below maxMessageBytes;
 * `last` marks the final chunk of a phase. Decoding treats input as hostile and throws only
 * KvError.
 */
import { Packr, Unpackr } from 'msgpackr';
import { type CausalContext, CrdtError, decodeCrdt, encodeCrdt, ORMap, type DecodeLimits } from '../crdt/index.js';
import { KvError, KvErrorCode } from './errors.js';

export const KV_PROTOCOL_VERSION = 1;
export const ANTI_ENTROPY_PROTOCOL = '/lashup/kv/ae/1';
/** Longest key accepted. */
export const MAX_KEY_LENGTH = 512;
/** Level-1 buckets of the anti-entropy digest tree: 256 x 4 bytes, so equal replicas spend about 1 KB. */
export const AE_BUCKETS = 256;
/** Level-2 buckets under each level-1 bucket (a 16-bit mask selects them). */
export const AE_SUB_BUCKETS = 16;

export const KvMessageType = {
  Delta: 1,
  Hello: 10,
  Equal: 11,
  Subs: 12,
  KeyRequest: 13,
  Keys: 14,
  Want: 15,
  Repair: 16,
  Final: 17,
} as const;

export interface WantItem {
  key: string;
  context: CausalContext | undefined;
  live: CausalContext | undefined;
  /** The initiator's whole state, instead of context and live dots, for a small key. */
  state: ORMap | undefined;
}
export interface RepairItem {
  key: string;
  delta: ORMap | undefined;
  context: CausalContext | undefined;
  live: CausalContext | undefined;
}
export interface FinalItem {
  key: string;
  delta: ORMap;
  context: CausalContext;
}

export type AeMessage =
  | { type: typeof KvMessageType.Hello; salt: number; sums: Uint32Array }
  | { type: typeof KvMessageType.Equal }
  | { type: typeof KvMessageType.Subs; last: boolean; subs: [number, Uint32Array][] }
  | { type: typeof KvMessageType.KeyRequest; last: boolean; leaves: [number, number][] }
  | { type: typeof KvMessageType.Keys; last: boolean; keys: [string, number][] }
  | { type: typeof KvMessageType.Want; last: boolean; items: WantItem[] }
  | { type: typeof KvMessageType.Repair; last: boolean; items: RepairItem[] }
  | { type: typeof KvMessageType.Final; last: boolean; items: FinalItem[] };

const packr = new Packr({ useRecords: false, moreTypes: false });
// No record structures: nothing carries over from one hostile input to the next.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

function fail(path: string, message: string): never {
  throw new KvError(KvErrorCode.Decode, `malformed kv message at ${path}: ${message}`, { path });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

export function checkKey(key: unknown, path = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new KvError(KvErrorCode.InvalidKey, `${path} ${describe(key)} is not a valid key; expected a string of 1 to ${MAX_KEY_LENGTH} characters`, {
      path,
    });
  }
}

function readKey(value: unknown, path: string): string {
  try {
    checkKey(value, path);
  } catch (err) {
    fail(path, (err as Error).message);
  }
  return value;
}

function unpack(bytes: Uint8Array, maxBytes: number, what: string): unknown[] {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) fail(what, 'empty input');
  if (bytes.byteLength > maxBytes) fail(what, `${bytes.byteLength} bytes exceed the limit of ${maxBytes}`);
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch (err) {
    throw new KvError(KvErrorCode.Decode, `malformed ${what}: not valid msgpack (${err instanceof Error ? err.message : String(err)})`, {}, { cause: err });
  }
  if (!Array.isArray(raw) || raw.length === 0) fail(what, `expected a message array, found ${describe(raw)}`);
  return raw;
}

function decodeState(bytes: unknown, path: string, limits: Partial<DecodeLimits>): ORMap {
  if (!(bytes instanceof Uint8Array)) fail(path, `expected a CRDT message, found ${describe(bytes)}`);
  let crdt;
  try {
    crdt = decodeCrdt(bytes, limits);
  } catch (err) {
    if (err instanceof CrdtError) throw new KvError(KvErrorCode.Decode, `malformed kv message at ${path}: ${err.message}`, { path }, { cause: err });
    throw err;
  }
  if (!(crdt instanceof ORMap)) fail(path, `expected an OR-map, found a ${crdt.kind}`);
  return crdt;
}

function decodeContextBytes(bytes: unknown, path: string, limits: Partial<DecodeLimits>): CausalContext {
  const carrier = decodeState(bytes, path, limits);
  if (!carrier.isEmpty()) fail(path, 'a context carrier must have an empty store');
  return carrier.context;
}

export function encodeContext(context: CausalContext): Uint8Array {
  return encodeCrdt(new ORMap(undefined, context.clone()));
}

// ------------------------------------------------------------------ push

/**
 * A delta as published: `[1, version, key, crdt, originWallMs]`. The fifth item, the origin's
 * wall-clock time of publication, feeds the propagation-delay histogram; it was added after
 * 0.1.0's first builds, which accept exactly four items and count these deltas as decode errors
 * (anti-entropy still carries the data to them). Decoders accept four or five items.
 */
export function encodeDelta(key: string, delta: ORMap, originWallMs?: number): Uint8Array {
  const message: unknown[] = [KvMessageType.Delta, KV_PROTOCOL_VERSION, key, encodeCrdt(delta)];
  if (originWallMs !== undefined) message.push(Math.round(originWallMs));
  return packr.pack(message).slice();
}

export function decodeDelta(bytes: Uint8Array, maxBytes: number): { key: string; delta: ORMap; originWallMs: number | undefined } {
  const raw = unpack(bytes, maxBytes, 'kv delta');
  if (raw[0] !== KvMessageType.Delta) fail('delta[0]', `expected message type ${KvMessageType.Delta}, found ${describe(raw[0])}`);
  checkVersion(raw[1]);
  if (raw.length !== 4 && raw.length !== 5) fail('delta', `expected [1, version, key, crdt, originWallMs?], found ${raw.length} items`);
  const origin = raw[4];
  if (raw.length === 5 && !(typeof origin === 'number' && Number.isSafeInteger(origin) && origin >= 0)) {
    fail('delta[4]', `expected the origin's wall-clock milliseconds (a non-negative integer), found ${describe(origin)}`);
  }
  return { key: readKey(raw[2], 'delta.key'), delta: decodeState(raw[3], 'delta.crdt', { maxBytes }), originWallMs: origin as number | undefined };
}

function checkVersion(version: unknown): void {
  if (version !== KV_PROTOCOL_VERSION) {
    throw new KvError(KvErrorCode.UnsupportedVersion, `kv protocol version ${String(version)} is not supported; this build speaks version ${KV_PROTOCOL_VERSION}`, {
      version,
      supported: [KV_PROTOCOL_VERSION],
    });
  }
}

// ------------------------------------------------------------------ anti-entropy

type ListMessage = Extract<AeMessage, { last: boolean }>;

function sumBytes(sums: Uint32Array): Uint8Array {
  const out = new Uint8Array(sums.length * 4);
  const view = new DataView(out.buffer);
  sums.forEach((s, i) => {
    view.setUint32(i * 4, s, true);
  });
  return out;
}

function readSums(bytes: unknown, count: number, path: string): Uint32Array {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== count * 4) fail(path, `expected ${count * 4} bytes, found ${describe(bytes)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sums = new Uint32Array(count);
  for (let i = 0; i < count; i++) sums[i] = view.getUint32(i * 4, true);
  return sums;
}

function wireItems(message: ListMessage): unknown[][] {
  switch (message.type) {
    case KvMessageType.Subs:
      return message.subs.map(([bucket, sums]) => [bucket, sumBytes(sums)]);
    case KvMessageType.KeyRequest:
      return message.leaves.map(([bucket, mask]) => [bucket, mask]);
    case KvMessageType.Keys:
      return message.keys.map(([key, digest]) => [key, digest]);
    case KvMessageType.Want:
      return message.items.map((i) => [i.key, i.context && encodeContext(i.context), i.live && encodeContext(i.live), i.state && encodeCrdt(i.state)]);
    case KvMessageType.Repair:
      return message.items.map((i) => [i.key, i.delta && encodeCrdt(i.delta), i.context && encodeContext(i.context), i.live && encodeContext(i.live)]);
    case KvMessageType.Final:
      return message.items.map((i) => [i.key, encodeCrdt(i.delta), encodeContext(i.context)]);
  }
}

function wireSize(item: unknown[]): number {
  let size = 8;
  for (const field of item) size += field instanceof Uint8Array ? field.byteLength + 5 : typeof field === 'string' ? field.length * 3 + 5 : 9;
  return size;
}

/**
 * Encodes a list message as chunks of at most about `maxBytes` each (an item larger than that
 * goes alone), the last chunk flagged. Each item's CRDT payloads are encoded once.
 */
export function encodeAeChunks(message: ListMessage, maxBytes: number): Uint8Array[] {
  const items = wireItems(message);
  const chunks: unknown[][][] = [];
  let current: unknown[][] = [];
  let size = 16;
  for (const item of items) {
    const itemSize = wireSize(item);
    if (current.length > 0 && size + itemSize > maxBytes) {
      chunks.push(current);
      current = [];
      size = 16;
    }
    current.push(item);
    size += itemSize;
  }
  chunks.push(current);
  return chunks.map((chunk, i) => {
    const last = i === chunks.length - 1 && message.last;
    const flat = message.type === KvMessageType.Keys || message.type === KvMessageType.Subs || message.type === KvMessageType.KeyRequest;
    return packr.pack([message.type, last, flat ? chunk.flat() : chunk]).slice();
  });
}

/** Encodes one anti-entropy message (list messages as one chunk: see encodeAeChunks). */
export function encodeAe(message: AeMessage): Uint8Array {
  switch (message.type) {
    case KvMessageType.Hello:
      return packr.pack([message.type, KV_PROTOCOL_VERSION, message.salt, sumBytes(message.sums)]).slice();
    case KvMessageType.Equal:
      return packr.pack([message.type]).slice();
    default:
      return encodeAeChunks(message, Number.MAX_SAFE_INTEGER)[0] as Uint8Array;
  }
}

/** The flat [a, b, a, b, ...] list of a chunked message. */
function readFlat(raw: unknown[], path: string): unknown[] {
  if (raw.length !== 3 || typeof raw[1] !== 'boolean' || !Array.isArray(raw[2]) || raw[2].length % 2 !== 0) {
    fail(path, `expected [type, last, [a, b, ...]] with pairs, found ${raw.length} items`);
  }
  return raw[2];
}

function readBucket(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= AE_BUCKETS) fail(path, `expected a bucket from 0 to ${AE_BUCKETS - 1}, found ${describe(value)}`);
  return value;
}

function readItems(raw: unknown[], path: string, width: number): unknown[][] {
  if (raw.length !== 3) fail(path, `expected [type, last, items], found ${raw.length} items`);
  if (typeof raw[1] !== 'boolean') fail(`${path}.last`, `expected a boolean, found ${describe(raw[1])}`);
  if (!Array.isArray(raw[2])) fail(`${path}.items`, `expected an array, found ${describe(raw[2])}`);
  return raw[2].map((item: unknown, i: number) => {
    if (!Array.isArray(item) || item.length !== width) fail(`${path}.items[${i}]`, `expected ${width} fields, found ${describe(item)}`);
    return item;
  });
}

function optional<T>(value: unknown, read: (v: unknown) => T): T | undefined {
  return value === null || value === undefined ? undefined : read(value);
}

/** Decodes one anti-entropy message. Throws only KvError. */
export function decodeAe(bytes: Uint8Array, maxBytes: number, limits: Partial<DecodeLimits> = {}): AeMessage {
  const raw = unpack(bytes, maxBytes, 'anti-entropy message');
  const crdtLimits = { maxBytes, ...limits };
  switch (raw[0]) {
    case KvMessageType.Hello: {
      if (raw.length !== 4) fail('hello', `expected 4 items, found ${raw.length}`);
      checkVersion(raw[1]);
      const salt = raw[2];
      if (typeof salt !== 'number' || !Number.isInteger(salt) || salt < 0 || salt > 0xffffffff) fail('hello.salt', `expected a 32-bit salt, found ${describe(salt)}`);
      const sums = readSums(raw[3], AE_BUCKETS, 'hello.sums');
      return { type: KvMessageType.Hello, salt, sums };
    }
    case KvMessageType.Equal:
      if (raw.length !== 1) fail('equal', `expected [11], found ${raw.length} items`);
      return { type: KvMessageType.Equal };
    case KvMessageType.Subs: {
      const flat = readFlat(raw, 'subs');
      const subs: [number, Uint32Array][] = [];
      for (let i = 0; i < flat.length; i += 2) subs.push([readBucket(flat[i], `subs[${i}]`), readSums(flat[i + 1], AE_SUB_BUCKETS, `subs[${i + 1}]`)]);
      return { type: KvMessageType.Subs, last: raw[1] as boolean, subs };
    }
    case KvMessageType.KeyRequest: {
      const flat = readFlat(raw, 'keyreq');
      const leaves: [number, number][] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const mask = flat[i + 1];
        if (typeof mask !== 'number' || !Number.isInteger(mask) || mask < 0 || mask > 0xffff) fail(`keyreq[${i + 1}]`, `expected a 16-bit mask, found ${describe(mask)}`);
        leaves.push([readBucket(flat[i], `keyreq[${i}]`), mask]);
      }
      return { type: KvMessageType.KeyRequest, last: raw[1] as boolean, leaves };
    }
    case KvMessageType.Keys: {
      const flat = readFlat(raw, 'keys');
      const keys: [string, number][] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const digest = flat[i + 1];
        if (typeof digest !== 'number' || !Number.isSafeInteger(digest) || digest < 0) fail(`keys[${i + 1}]`, `expected a digest, found ${describe(digest)}`);
        keys.push([readKey(flat[i], `keys[${i}]`), digest]);
      }
      return { type: KvMessageType.Keys, last: raw[1] as boolean, keys };
    }
    case KvMessageType.Want:
      return {
        type: KvMessageType.Want,
        last: raw[1] as boolean,
        items: readItems(raw, 'want', 4).map((f, i) => ({
          key: readKey(f[0], `want.items[${i}].key`),
          context: optional(f[1], (v) => decodeContextBytes(v, `want.items[${i}].context`, crdtLimits)),
          live: optional(f[2], (v) => decodeContextBytes(v, `want.items[${i}].live`, crdtLimits)),
          state: optional(f[3], (v) => decodeState(v, `want.items[${i}].state`, crdtLimits)),
        })),
      };
    case KvMessageType.Repair:
      return {
        type: KvMessageType.Repair,
        last: raw[1] as boolean,
        items: readItems(raw, 'repair', 4).map((f, i) => ({
          key: readKey(f[0], `repair.items[${i}].key`),
          delta: optional(f[1], (v) => decodeState(v, `repair.items[${i}].delta`, crdtLimits)),
          context: optional(f[2], (v) => decodeContextBytes(v, `repair.items[${i}].context`, crdtLimits)),
          live: optional(f[3], (v) => decodeContextBytes(v, `repair.items[${i}].live`, crdtLimits)),
        })),
      };
    case KvMessageType.Final:
      return {
        type: KvMessageType.Final,
        last: raw[1] as boolean,
        items: readItems(raw, 'final', 3).map((f, i) => ({
          key: readKey(f[0], `final.items[${i}].key`),
          delta: decodeState(f[1], `final.items[${i}].delta`, crdtLimits),
          context: decodeContextBytes(f[2], `final.items[${i}].context`, crdtLimits),
        })),
      };
    default:
      fail('message[0]', `expected an anti-entropy message type (10 to 17), found ${describe(raw[0])}`);
  }
}
