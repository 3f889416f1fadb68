/**
 * Plain values: what registers hold and what reading a CRDT gives back.
 *
 * null, booleans, finite numbers, strings, byte arrays, arrays and string-keyed objects of these.
 * Anything else (undefined, NaN, functions, class instances, cycles) is refused at the boundary
 * with a typed error, so that every value survives the codec unchanged.
 *
 * Values held by a CRDT are frozen (byte arrays are copied instead: typed arrays cannot be
 * frozen), so a caller cannot change replicated state by mutating what it read, and their
 * objects list keys in sorted order (also when decoded), so equal values read the same.
 */
import { describeValue } from '../common/index.js';
import { CrdtError, CrdtErrorCode } from './errors.js';

export type PlainValue = null | boolean | number | string | Uint8Array | readonly PlainValue[] | PlainObject;
export interface PlainObject {
  readonly [key: string]: PlainValue;
}

/** Nesting depth allowed inside one value. */
export const MAX_VALUE_DEPTH = 32;

/**
 * Validates `value` and returns an immutable copy-on-need version of it: objects and arrays are
 * frozen in place when already plain, byte arrays are copied.
 */
export function toPlain(value: unknown, path = 'value', depth = 0): PlainValue {
  if (depth > MAX_VALUE_DEPTH) {
    throw new CrdtError(CrdtErrorCode.InvalidValue, `${path} nests deeper than ${MAX_VALUE_DEPTH} levels`, { path });
  }
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new CrdtError(CrdtErrorCode.InvalidValue, `${path} = ${String(value)} is not a finite number`, { path });
    }
    return value;
  }
  if (value instanceof Uint8Array) return value.slice();
  if (Array.isArray(value)) {
    const out = value.map((item, i) => toPlain(item, `${path}[${i}]`, depth + 1));
    return Object.freeze(out);
  }
  if (typeof value === 'object' && isPlainObjectPrototype(value)) {
    // Keys in sorted order: values equal under comparePlain then have one representation. (Two
    // concurrent MV writes of {q:1,p:0} and {p:0,q:1} once read back differently on converged
    // replicas, whichever their store listed first; found by the convergence property.)
    const out: Record<string, PlainValue> = {};
    for (const key of Object.keys(value).sort()) {
      const item = toPlain((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
      Object.defineProperty(out, key, { value: item, enumerable: true, writable: false, configurable: false });
    }
    return Object.freeze(out);
  }
  throw new CrdtError(CrdtErrorCode.InvalidValue, `${path} = ${describeValue(value)} is not plain data; expected null, boolean, finite number, string, Uint8Array, array or plain object`, {
    path,
    type: typeof value,
  });
}

function isPlainObjectPrototype(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

const TYPE_RANK: Record<string, number> = { null: 0, boolean: 1, number: 2, string: 3, bytes: 4, array: 5, object: 6 };

function typeName(v: PlainValue): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** A total order on plain values: by type, then by content. Deterministic across processes. */
export function comparePlain(a: PlainValue, b: PlainValue): number {
  const ta = typeName(a);
  const tb = typeName(b);
  if (ta !== tb) return (TYPE_RANK[ta] as number) - (TYPE_RANK[tb] as number);
  switch (ta) {
    case 'null':
      return 0;
    case 'boolean':
    case 'number':
      return a === b ? 0 : (a as number) < (b as number) ? -1 : 1;
    case 'string':
      return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
    case 'bytes': {
      const x = a as Uint8Array;
      const y = b as Uint8Array;
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
      return x.length - y.length;
    }
    case 'array': {
      const x = a as readonly PlainValue[];
      const y = b as readonly PlainValue[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = comparePlain(x[i] as PlainValue, y[i] as PlainValue);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    default: {
      const x = a as PlainObject;
      const y = b as PlainObject;
      const kx = Object.keys(x).sort();
      const ky = Object.keys(y).sort();
      const n = Math.min(kx.length, ky.length);
      for (let i = 0; i < n; i++) {
        const key = kx[i] as string;
        if (key !== ky[i]) return key < (ky[i] as string) ? -1 : 1;
        const c = comparePlain(x[key] as PlainValue, y[key] as PlainValue);
        if (c !== 0) return c;
      }
      return kx.length - ky.length;
    }
  }
}

export function plainEquals(a: PlainValue, b: PlainValue): boolean {
  if (a === b) return true;
  return comparePlain(a, b) === 0;
}

/** A JSON-safe rendering (byte arrays as `{ "$bytes": "<hex>" }`) for logs, APIs and canonical forms. */
export function plainToJson(value: PlainValue): unknown {
  if (value instanceof Uint8Array) return { $bytes: toHex(value) };
  if (Array.isArray(value)) return value.map((v) => plainToJson(v as PlainValue));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      setOwn(out, key, plainToJson((value as PlainObject)[key] as PlainValue));
    }
    return out;
  }
  return value;
}

function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += (b < 16 ? '0' : '') + b.toString(16);
  return out;
}

/** Sets an own enumerable property, whatever the key ("__proto__" included, which `obj[key] =` would not set). */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
