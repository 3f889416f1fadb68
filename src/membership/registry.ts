/**
 * Interning of member names, addresses and metadata, shared by every member table that uses one
 * registry.
 *
 * Why: a simulation of 10,000 nodes holds 10,000 views of 10,000 members, 10^8 entries. As
 * objects with their own strings that is over 10 GB; as rows of typed arrays indexed by a
 * shared id (see table.ts) it is about 2 GB. A daemon has one node per process and one registry
 * per node, where interning costs nothing and tables stay as compact.
 *
 * Ids are reference counted: a table retains an id for each value it holds and releases it when
 * it drops the member, so a registry does not grow with churn; a freed id is reused.
 */
import { hashString32 } from '../common/index.js';

export class Interner<T> {
  private readonly idByKey = new Map<string, number>();
  private readonly keys: (string | undefined)[] = [];
  private readonly values: (T | undefined)[] = [];
  private readonly refs: number[] = [];
  private readonly free: number[] = [];

  /** One above the largest id ever handed out: tables size their columns by it. */
  get capacity(): number {
    return this.keys.length;
  }

  /** Ids currently held by someone. */
  get size(): number {
    return this.idByKey.size;
  }

  /** The id of `key`, or -1 when nobody holds it. */
  find(key: string): number {
    return this.idByKey.get(key) ?? -1;
  }

  /** The id of `key` (its value made by `make(key)` when new), with one more reference. */
  acquire(key: string, make: (key: string) => T): number {
    let id = this.idByKey.get(key);
    if (id === undefined) {
      id = this.free.pop() ?? this.keys.length;
      this.idByKey.set(key, id);
      this.keys[id] = key;
      this.values[id] = make(key);
      this.refs[id] = 0;
    }
    this.refs[id] = (this.refs[id] as number) + 1;
    return id;
  }

  /** One more reference to an id someone already holds. */
  retain(id: number): void {
    this.refs[id] = (this.refs[id] as number) + 1;
  }

  /** Drops one reference; the id is freed with its last one. */
  release(id: number): void {
    const refs = (this.refs[id] ?? 0) - 1;
    if (refs > 0) {
      this.refs[id] = refs;
      return;
    }
    if (refs < 0) return;
    this.refs[id] = 0;
    this.idByKey.delete(this.keys[id] as string);
    this.keys[id] = undefined;
    this.values[id] = undefined;
    this.free.push(id);
  }

  value(id: number): T {
    return this.values[id] as T;
  }

  key(id: number): string {
    return this.keys[id] as string;
  }
}

/** Bytes as a string key (one char per byte): metadata is at most 512 bytes. */
export function bytesKey(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i] as number);
  return out;
}

function keyBytes(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  return out;
}

function same(key: string): string {
  return key;
}

/** Members resolved to registry ids once, for seeding many tables with them (simulations). */
export interface SeedSet {
  readonly nameIds: Int32Array;
  readonly addressIds: Int32Array;
  readonly metaIds: Int32Array;
}

export class MemberRegistry {
  /** Member names; the value is the name's 32-bit hash (bucket choice and sync digests). */
  readonly names = new Interner<number>();
  readonly addresses = new Interner<string>();
  readonly metas = new Interner<Uint8Array>();

  acquireName(name: string): number {
    return this.names.acquire(name, hashString32);
  }

  nameHash(id: number): number {
    return this.names.value(id);
  }

  acquireAddress(address: string): number {
    return this.addresses.acquire(address, same);
  }

  acquireMeta(meta: Uint8Array): number {
    return this.metas.acquire(bytesKey(meta), keyBytes);
  }

  /** Resolves members once (holding a reference to each id for as long as the registry lives). */
  seedSet(members: readonly { name: string; address: string; meta?: Uint8Array }[]): SeedSet {
    const empty = new Uint8Array(0);
    const set = {
      nameIds: new Int32Array(members.length),
      addressIds: new Int32Array(members.length),
      metaIds: new Int32Array(members.length),
    };
    members.forEach((m, i) => {
      set.nameIds[i] = this.acquireName(m.name);
      set.addressIds[i] = this.acquireAddress(m.address);
      set.metaIds[i] = this.acquireMeta(m.meta ?? empty);
    });
    return set;
  }
}
