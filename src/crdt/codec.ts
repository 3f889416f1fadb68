/**
 * Binary codec for CRDT states and deltas (msgpack, format version 1).
 *
 * Layout, all positional arrays (no field names on the wire):
 *
 *   message  = [version, kindTag, context, store]
 *   context  = [[actorRef, frontier, ...], [actorRef, [counter, ...], ...]]   vector, then cloud
 *   ewflag / dwflag = [actorRef, counter, ...]
 *   lww      = [actorRef, counter, markerRef, value, ...]
 *   mvreg    = [actorRef, counter, value, ...]
 *   awset    = [elementRef, [actorRef, counter, ...], ...]
 *   ormap    = [nameRef, kindTag, store, ...]
 *
 * References: the first time an actor, a name (map key or set element) or a marker appears it is
 * written in full (a string; a marker as [ts, actorRef]) and appended to that kind's table; later
 * occurrences are the table index (an integer). Field names repeated across thousands of map
 * entries and the one marker shared by the fields of one write then cost a byte or two.
 *
 * Encoding is canonical (everything sorted), so equal states give equal bytes. The version is
 * append-only: a decoder refuses versions it does not know with LASHUP_ERR_CRDT_UNSUPPORTED_VERSION.
 *
 * Decoding treats its input as hostile: sizes are limited before anything is built, every field is
 * type-checked, and the result must be a well-formed state (store dots inside the context, no dot
 * twice, no empty entries). Any failure is a CrdtError; nothing else escapes. (A register holding
 * two values under one marker is a state joins can produce, see registers.ts, so it decodes.)
 */
import { Packr, Unpackr } from 'msgpackr';
import { CausalContext, compareDots, MAX_ACTOR_LENGTH, type Dot } from './context.js';
import { CrdtError, CrdtErrorCode } from './errors.js';
import { makeEntry, MapStore, slotOf } from './map-store.js';
import { MAX_VALUE_DEPTH, type PlainValue } from './plain.js';
import type { LwwEntry, LwwMarker, MvEntry } from './registers.js';
import { KIND_TAGS, type Kind } from './store.js';
import { crdtOfKind, type CausalCrdt } from './types.js';

export const CRDT_FORMAT_VERSION = 1;

export interface DecodeLimits {
  /** Largest encoded message accepted, in bytes. Default 16 MiB: a 10,000-agent overlay map is about 2 MiB. */
  maxBytes: number;
  /** Most container elements (array items, map entries) in one message. Default 4,000,000. */
  maxEntries: number;
  /** Deepest nesting of arrays and maps in one message (structure and values). Default 64. */
  maxDepth: number;
}

export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = { maxBytes: 16 * 1024 * 1024, maxEntries: 4_000_000, maxDepth: 64 };

const TAG_TO_KIND = new Map<number, Kind>(Object.entries(KIND_TAGS).map(([kind, tag]) => [tag, kind as Kind]));

const packr = new Packr({ useRecords: false, moreTypes: false });

// ---------------------------------------------------------------- encoding

class EncodeTables {
  private readonly actors = new Map<string, number>();
  private readonly names = new Map<string, number>();
  private readonly markers = new Map<string, number>();

  actor(actor: string): string | number {
    const known = this.actors.get(actor);
    if (known !== undefined) return known;
    this.actors.set(actor, this.actors.size);
    return actor;
  }

  name(name: string): string | number {
    const known = this.names.get(name);
    if (known !== undefined) return known;
    this.names.set(name, this.names.size);
    return name;
  }

  marker(marker: LwwMarker): number | unknown[] {
    const key = `${marker.ts}\u0000${marker.actor}`;
    const known = this.markers.get(key);
    if (known !== undefined) return known;
    this.markers.set(key, this.markers.size);
    return [marker.ts, this.actor(marker.actor)];
  }
}

function encodeContext(context: CausalContext, t: EncodeTables): unknown[] {
  const vector: unknown[] = [];
  for (const [actor, frontier] of context.vector()) vector.push(t.actor(actor), frontier);
  const cloud: unknown[] = [];
  let current: string | undefined;
  let counters: number[] = [];
  for (const dot of context.cloudDots()) {
    if (dot.actor !== current) {
      current = dot.actor;
      counters = [];
      cloud.push(t.actor(dot.actor), counters);
    }
    counters.push(dot.counter);
  }
  return [vector, cloud];
}

function encodeDots(dots: readonly Dot[], t: EncodeTables): unknown[] {
  const out: unknown[] = [];
  for (const d of [...dots].sort(compareDots)) out.push(t.actor(d.actor), d.counter);
  return out;
}

function encodeStore(kind: Kind, store: unknown, t: EncodeTables): unknown[] {
  switch (kind) {
    case 'ewflag':
    case 'dwflag':
      return encodeDots(store as Dot[], t);
    case 'lww': {
      const out: unknown[] = [];
      for (const e of [...(store as LwwEntry[])].sort(compareDots)) out.push(t.actor(e.actor), e.counter, t.marker(e.marker), e.value);
      return out;
    }
    case 'mvreg': {
      const out: unknown[] = [];
      for (const e of [...(store as MvEntry[])].sort(compareDots)) out.push(t.actor(e.actor), e.counter, e.value);
      return out;
    }
    case 'awset': {
      const set = store as Map<string, Dot[]>;
      const out: unknown[] = [];
      for (const element of [...set.keys()].sort()) out.push(t.name(element), encodeDots(set.get(element) as Dot[], t));
      return out;
    }
    case 'ormap': {
      const map = store as MapStore;
      const out: unknown[] = [];
      for (const slot of [...map.entries.keys()].sort()) {
        const entry = map.entries.get(slot) as { name: string; kind: Kind; store: unknown };
        out.push(t.name(entry.name), KIND_TAGS[entry.kind], encodeStore(entry.kind, entry.store, t));
      }
      return out;
    }
  }
}

/** Encodes a state or delta. Equal states give equal bytes. */
export function encodeCrdt(crdt: CausalCrdt<unknown, unknown>): Uint8Array {
  const tables = new EncodeTables();
  const context = encodeContext(crdt.context, tables);
  const store = encodeStore(crdt.kind, crdt.rawStore(), tables);
  return packr.pack([CRDT_FORMAT_VERSION, KIND_TAGS[crdt.kind], context, store]);
}

// ---------------------------------------------------------------- decoding

function fail(path: string, message: string): never {
  throw new CrdtError(CrdtErrorCode.Decode, `malformed CRDT message at ${path}: ${message}`, { path });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (value instanceof Map) return `a map of ${value.size}`;
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value)})`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function expectArray(value: unknown, path: string, multipleOf = 1): unknown[] {
  if (!Array.isArray(value)) fail(path, `expected an array, found ${describe(value)}`);
  if (value.length % multipleOf !== 0) fail(path, `expected groups of ${multipleOf} items, found ${value.length} items`);
  return value;
}

function expectCounter(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) fail(path, `expected a counter (safe integer >= 1), found ${describe(value)}`);
  return value;
}

/** Checks sizes and depth of the raw decoded tree without recursion (cycles cannot loop: depth is bounded). */
function checkShape(root: unknown, limits: DecodeLimits): void {
  let entries = 0;
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (Array.isArray(node) || node instanceof Map) {
      if (depth >= limits.maxDepth) {
        throw new CrdtError(CrdtErrorCode.DecodeLimit, `CRDT message nests deeper than ${limits.maxDepth} levels`, { maxDepth: limits.maxDepth });
      }
      entries += Array.isArray(node) ? node.length : node.size;
      if (entries > limits.maxEntries) {
        throw new CrdtError(CrdtErrorCode.DecodeLimit, `CRDT message has more than ${limits.maxEntries} entries`, { maxEntries: limits.maxEntries });
      }
      if (Array.isArray(node)) for (const item of node) stack.push([item, depth + 1]);
      else
        for (const [key, item] of node) {
          stack.push([key, depth + 1]);
          stack.push([item, depth + 1]);
        }
    }
  }
}

class DecodeTables {
  readonly actors: string[] = [];
  readonly names: string[] = [];
  readonly markers: LwwMarker[] = [];
  /** Every dot seen in the store, to refuse one dot in two places. */
  readonly storeDots = new Set<string>();

  actor(ref: unknown, path: string): string {
    if (typeof ref === 'string') {
      if (ref.length === 0 || ref.length > MAX_ACTOR_LENGTH) fail(path, `actor must have 1 to ${MAX_ACTOR_LENGTH} characters, found ${ref.length}`);
      this.actors.push(ref);
      return ref;
    }
    return this.lookup(this.actors, ref, path, 'actor');
  }

  name(ref: unknown, path: string): string {
    if (typeof ref === 'string') {
      this.names.push(ref);
      return ref;
    }
    return this.lookup(this.names, ref, path, 'name');
  }

  marker(ref: unknown, path: string): LwwMarker {
    if (Array.isArray(ref)) {
      if (ref.length !== 2) fail(path, `a marker is [ts, actor], found ${ref.length} items`);
      const ts = ref[0];
      if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) fail(`${path}[0]`, `expected a marker timestamp (safe integer >= 0), found ${describe(ts)}`);
      const marker = { ts, actor: this.actor(ref[1], `${path}[1]`) };
      this.markers.push(marker);
      return marker;
    }
    return this.lookup(this.markers, ref, path, 'marker');
  }

  dot(actorRef: unknown, counter: unknown, path: string, context: CausalContext): Dot {
    const dot = { actor: this.actor(actorRef, path), counter: expectCounter(counter, path) };
    const key = `${dot.counter}@${dot.actor}`;
    if (this.storeDots.has(key)) fail(path, `dot (${JSON.stringify(dot.actor)}, ${dot.counter}) appears twice in the store`);
    this.storeDots.add(key);
    if (!context.has(dot.actor, dot.counter)) fail(path, `dot (${JSON.stringify(dot.actor)}, ${dot.counter}) is in the store but not in the context`);
    return dot;
  }

  private lookup<T>(table: T[], ref: unknown, path: string, what: string): T {
    if (typeof ref !== 'number' || !Number.isInteger(ref) || ref < 0 || ref >= table.length) {
      fail(path, `expected a ${what} or a reference below ${table.length}, found ${describe(ref)}`);
    }
    return table[ref] as T;
  }
}

function decodeContext(raw: unknown, t: DecodeTables): CausalContext {
  const parts = expectArray(raw, 'context');
  if (parts.length !== 2) fail('context', `expected [vector, cloud], found ${parts.length} items`);
  const context = new CausalContext();
  const vector = expectArray(parts[0], 'context.vector', 2);
  const seen = new Set<string>();
  for (let i = 0; i < vector.length; i += 2) {
    const actor = t.actor(vector[i], `context.vector[${i}]`);
    if (seen.has(actor)) fail(`context.vector[${i}]`, `actor ${JSON.stringify(actor)} appears twice`);
    seen.add(actor);
    context.addUpTo(actor, expectCounter(vector[i + 1], `context.vector[${i + 1}]`));
  }
  const cloud = expectArray(parts[1], 'context.cloud', 2);
  for (let i = 0; i < cloud.length; i += 2) {
    const actor = t.actor(cloud[i], `context.cloud[${i}]`);
    const counters = expectArray(cloud[i + 1], `context.cloud[${i + 1}]`);
    counters.forEach((c, j) => {
      context.add(actor, expectCounter(c, `context.cloud[${i + 1}][${j}]`));
    });
  }
  return context;
}

function decodeValue(raw: unknown, path: string, depth: number): PlainValue {
  if (raw === null || typeof raw === 'boolean' || typeof raw === 'string') return raw;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) fail(path, `numbers must be finite, found ${raw}`);
    return raw;
  }
  if (depth > MAX_VALUE_DEPTH) fail(path, `a value nests deeper than ${MAX_VALUE_DEPTH} levels`);
  if (raw instanceof Uint8Array) return raw.slice();
  if (Array.isArray(raw)) return Object.freeze(raw.map((item, i) => decodeValue(item, `${path}[${i}]`, depth + 1)));
  if (raw instanceof Map) {
    const entries = new Map<string, PlainValue>();
    for (const [key, item] of raw) {
      if (typeof key !== 'string') fail(path, `object keys must be strings, found ${describe(key)}`);
      if (entries.has(key)) fail(path, `object key ${JSON.stringify(key)} appears twice`);
      entries.set(key, decodeValue(item, `${path}.${key}`, depth + 1));
    }
    // Sorted keys, as toPlain makes them, whatever order the sender used.
    const out: Record<string, PlainValue> = {};
    for (const key of [...entries.keys()].sort()) Object.defineProperty(out, key, { value: entries.get(key), enumerable: true });
    return Object.freeze(out);
  }
  fail(path, `expected plain data, found ${describe(raw)}`);
}

function decodeKind(raw: unknown, path: string): Kind {
  const kind = typeof raw === 'number' ? TAG_TO_KIND.get(raw) : undefined;
  if (kind === undefined) fail(path, `expected a kind tag (${[...TAG_TO_KIND.keys()].join(', ')}), found ${describe(raw)}`);
  return kind;
}

function decodeStore(kind: Kind, raw: unknown, path: string, t: DecodeTables, context: CausalContext): unknown {
  switch (kind) {
    case 'ewflag':
    case 'dwflag': {
      const flat = expectArray(raw, path, 2);
      const dots: Dot[] = [];
      for (let i = 0; i < flat.length; i += 2) dots.push(t.dot(flat[i], flat[i + 1], `${path}[${i}]`, context));
      return dots;
    }
    case 'lww': {
      const flat = expectArray(raw, path, 4);
      const entries: LwwEntry[] = [];
      for (let i = 0; i < flat.length; i += 4) {
        const dot = t.dot(flat[i], flat[i + 1], `${path}[${i}]`, context);
        const marker = t.marker(flat[i + 2], `${path}[${i + 2}]`);
        entries.push({ ...dot, marker, value: decodeValue(flat[i + 3], `${path}[${i + 3}]`, 0) });
      }
      return entries;
    }
    case 'mvreg': {
      const flat = expectArray(raw, path, 3);
      const entries: MvEntry[] = [];
      for (let i = 0; i < flat.length; i += 3) {
        const dot = t.dot(flat[i], flat[i + 1], `${path}[${i}]`, context);
        entries.push({ ...dot, value: decodeValue(flat[i + 2], `${path}[${i + 2}]`, 0) });
      }
      return entries;
    }
    case 'awset': {
      const flat = expectArray(raw, path, 2);
      const set = new Map<string, Dot[]>();
      for (let i = 0; i < flat.length; i += 2) {
        const element = t.name(flat[i], `${path}[${i}]`);
        if (set.has(element)) fail(`${path}[${i}]`, `element ${JSON.stringify(element)} appears twice`);
        const dots = decodeStore('ewflag', flat[i + 1], `${path}[${i + 1}]`, t, context) as Dot[];
        if (dots.length === 0) fail(`${path}[${i + 1}]`, `element ${JSON.stringify(element)} has no dots`);
        set.set(element, dots);
      }
      return set;
    }
    case 'ormap': {
      const flat = expectArray(raw, path, 3);
      const map = new MapStore();
      for (let i = 0; i < flat.length; i += 3) {
        const name = t.name(flat[i], `${path}[${i}]`);
        const entryKind = decodeKind(flat[i + 1], `${path}[${i + 1}]`);
        const slot = slotOf(name, entryKind);
        if (map.entries.has(slot)) fail(`${path}[${i}]`, `entry ${JSON.stringify(name)} of kind ${entryKind} appears twice`);
        const store = decodeStore(entryKind, flat[i + 2], `${path}.${name}`, t, context);
        if (isEmptyStore(entryKind, store)) fail(`${path}.${name}`, `entry ${JSON.stringify(name)} is empty (empty entries are never encoded)`);
        map.entries.set(slot, makeEntry(slot, name, entryKind, store));
      }
      return map;
    }
  }
}

function isEmptyStore(kind: Kind, store: unknown): boolean {
  if (kind === 'awset' || kind === 'ormap') return (store as { size: number }).size === 0;
  return (store as unknown[]).length === 0;
}

/**
 * Decodes a state or delta. Throws only CrdtError: LASHUP_ERR_CRDT_DECODE for malformed input,
 * LASHUP_ERR_CRDT_DECODE_LIMIT beyond `limits`, LASHUP_ERR_CRDT_UNSUPPORTED_VERSION for a newer
 * format.
 */
export function decodeCrdt(bytes: Uint8Array, limits: Partial<DecodeLimits> = {}): CausalCrdt<unknown, unknown> {
  const effective: DecodeLimits = { ...DEFAULT_DECODE_LIMITS, ...limits };
  if (!(bytes instanceof Uint8Array)) fail('message', `expected bytes, found ${describe(bytes)}`);
  if (bytes.byteLength > effective.maxBytes) {
    throw new CrdtError(CrdtErrorCode.DecodeLimit, `CRDT message of ${bytes.byteLength} bytes exceeds the limit of ${effective.maxBytes} bytes`, {
      bytes: bytes.byteLength,
      maxBytes: effective.maxBytes,
    });
  }
  if (bytes.byteLength === 0) fail('message', 'empty input');
  let raw: unknown;
  try {
    // A fresh decoder per message: no state (such as record definitions) carries over between messages.
    raw = new Unpackr({ useRecords: false, mapsAsObjects: false }).unpack(bytes);
  } catch (err) {
    throw new CrdtError(CrdtErrorCode.Decode, `malformed CRDT message: not valid msgpack (${err instanceof Error ? err.message : String(err)})`, {}, { cause: err });
  }
  try {
    checkShape(raw, effective);
    const top = expectArray(raw, 'message');
    if (top.length < 1 || typeof top[0] !== 'number') fail('message[0]', `expected a format version, found ${describe(top[0])}`);
    if (top[0] !== CRDT_FORMAT_VERSION) {
      throw new CrdtError(CrdtErrorCode.UnsupportedVersion, `CRDT format version ${String(top[0])} is not supported; this build reads version ${CRDT_FORMAT_VERSION}`, {
        version: top[0],
        supported: [CRDT_FORMAT_VERSION],
      });
    }
    if (top.length !== 4) fail('message', `expected [version, kind, context, store], found ${top.length} items`);
    const kind = decodeKind(top[1], 'message[1]');
    const tables = new DecodeTables();
    const context = decodeContext(top[2], tables);
    const store = decodeStore(kind, top[3], 'store', tables, context);
    return crdtOfKind(kind, store, context);
  } catch (err) {
    if (err instanceof CrdtError) throw err;
    // Anything else (a stack overflow on absurd nesting, say) is still the input's fault.
    throw new CrdtError(CrdtErrorCode.Decode, `malformed CRDT message: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
  }
}
