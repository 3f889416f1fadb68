/**
 * One node's view of the members: rows of typed arrays indexed by the registry's name id.
 *
 * Column per field (state, incarnation, state-change time, address id, metadata id) plus a
 * dense list of present ids for iteration and random choice. A row costs about 30 bytes, so
 * 10,000 simulated nodes each holding 10,000 members fit in memory (see registry.ts).
 *
 * Invariant: `state[id] !== ABSENT` exactly for the ids in `list[0..count)`, and
 * `pos[list[i]] === i`. Every present row holds one reference to its name, address and
 * metadata ids in the registry.
 */
import { fmix32 } from '../common/index.js';
import type { MemberRegistry } from './registry.js';

/** Member states. The numbers are on the wire (sync records): append-only. */
export const MemberState = {
  Alive: 1,
  Suspect: 2,
  Dead: 3,
  Left: 4,
} as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];

export const ABSENT = 0;

export const STATE_NAMES: Readonly<Record<MemberState, 'alive' | 'suspect' | 'dead' | 'left'>> = {
  1: 'alive',
  2: 'suspect',
  3: 'dead',
  4: 'left',
};

/** Largest incarnation number (it travels as an unsigned 32-bit integer). */
export const MAX_INCARNATION = 0xffffffff;

/** Mixes a member's name hash, incarnation and state into one 32-bit digest (murmur3 finaliser). */
export function memberDigest(nameHash: number, incarnation: number, state: number): number {
  return fmix32(nameHash ^ Math.imul(incarnation, 0x9e3779b1) ^ Math.imul(state, 0x85ebca6b));
}

export class MemberTable {
  state = new Uint8Array(16);
  incarnation = new Uint32Array(16);
  changedAtMs = new Float64Array(16);
  addressId = new Int32Array(16);
  metaId = new Int32Array(16);
  private pos = new Int32Array(16);
  private list = new Int32Array(16);
  private listCount = 0;
  private live = 0;

  constructor(readonly registry: MemberRegistry) {}

  /** Members present (any state). */
  get count(): number {
    return this.listCount;
  }

  /** Members alive or suspect. */
  get liveCount(): number {
    return this.live;
  }

  /** The id at position `i` of the dense list (0 <= i < count). */
  at(i: number): number {
    return this.list[i] as number;
  }

  /** The id of `name` in this table, or -1. */
  find(name: string): number {
    const id = this.registry.names.find(name);
    return id >= 0 && id < this.state.length && this.state[id] !== ABSENT ? id : -1;
  }

  has(id: number): boolean {
    return id >= 0 && id < this.state.length && this.state[id] !== ABSENT;
  }

  getState(id: number): number {
    return id < this.state.length ? (this.state[id] as number) : ABSENT;
  }

  name(id: number): string {
    return this.registry.names.key(id);
  }

  address(id: number): string {
    return this.registry.addresses.value(this.addressId[id] as number);
  }

  meta(id: number): Uint8Array {
    return this.registry.metas.value(this.metaId[id] as number);
  }

  /** Adds a member; returns its id. The caller checked it is not present. */
  add(name: string, address: string, meta: Uint8Array, incarnation: number, state: MemberState, nowMs: number): number {
    const registry = this.registry;
    const id = registry.acquireName(name);
    this.insert(id, registry.acquireAddress(address), registry.acquireMeta(meta), incarnation, state, nowMs);
    return id;
  }

  /** Adds a member from ids someone else holds (taking a reference to each); false if present. */
  addIds(nameId: number, addressId: number, metaId: number, incarnation: number, state: MemberState, nowMs: number): boolean {
    if (this.has(nameId)) return false;
    const registry = this.registry;
    registry.names.retain(nameId);
    registry.addresses.retain(addressId);
    registry.metas.retain(metaId);
    this.insert(nameId, addressId, metaId, incarnation, state, nowMs);
    return true;
  }

  private insert(id: number, addressId: number, metaId: number, incarnation: number, state: MemberState, nowMs: number): void {
    this.ensure(id);
    this.state[id] = state;
    this.incarnation[id] = incarnation;
    this.changedAtMs[id] = nowMs;
    this.addressId[id] = addressId;
    this.metaId[id] = metaId;
    if (this.listCount === this.list.length) this.list = grow(this.list, this.listCount * 2);
    this.pos[id] = this.listCount;
    this.list[this.listCount++] = id;
    if (isLive(state)) this.live++;
  }

  setState(id: number, state: MemberState, incarnation: number, nowMs: number): void {
    const before = this.state[id] as number;
    if (isLive(before) !== isLive(state)) this.live += isLive(state) ? 1 : -1;
    if (before !== state) this.changedAtMs[id] = nowMs;
    this.state[id] = state;
    this.incarnation[id] = incarnation;
  }

  setAddress(id: number, address: string): void {
    if (this.address(id) === address) return;
    const old = this.addressId[id] as number;
    this.addressId[id] = this.registry.acquireAddress(address);
    this.registry.addresses.release(old);
  }

  setMeta(id: number, meta: Uint8Array): void {
    const old = this.metaId[id] as number;
    this.metaId[id] = this.registry.acquireMeta(meta);
    this.registry.metas.release(old);
  }

  remove(id: number): void {
    if (!this.has(id)) return;
    if (isLive(this.state[id] as number)) this.live--;
    this.state[id] = ABSENT;
    const at = this.pos[id] as number;
    const last = this.list[--this.listCount] as number;
    this.list[at] = last;
    this.pos[last] = at;
    this.registry.addresses.release(this.addressId[id] as number);
    this.registry.metas.release(this.metaId[id] as number);
    this.registry.names.release(id);
  }

  /** Releases every reference this table holds (the node is being discarded). */
  clear(): void {
    while (this.listCount > 0) this.remove(this.list[0] as number);
  }

  /** Per-bucket sums of member digests, `buckets` a power of two (see sync.ts). */
  bucketSums(buckets: number): Uint32Array {
    const sums = new Uint32Array(buckets);
    const mask = buckets - 1;
    const registry = this.registry;
    for (let i = 0; i < this.listCount; i++) {
      const id = this.list[i] as number;
      const hash = registry.nameHash(id);
      const b = hash & mask;
      sums[b] = ((sums[b] as number) + memberDigest(hash, this.incarnation[id] as number, this.state[id] as number)) >>> 0;
    }
    return sums;
  }

  /** The bucket of a member for `buckets` buckets. */
  bucketOf(id: number, buckets: number): number {
    return this.registry.nameHash(id) & (buckets - 1);
  }

  private ensure(id: number): void {
    if (id < this.state.length) return;
    // Grow by a quarter, not double: 10,000 simulated tables of 10,000 rows each must not jump
    // to 20,000 rows when one member joins.
    const size = Math.max(id + 1, Math.ceil(this.state.length * 1.25), this.registry.names.capacity);
    this.state = grow(this.state, size);
    this.incarnation = grow(this.incarnation, size);
    this.changedAtMs = grow(this.changedAtMs, size);
    this.addressId = grow(this.addressId, size);
    this.metaId = grow(this.metaId, size);
    this.pos = grow(this.pos, size);
  }
}

export function isLive(state: number): boolean {
  return state === MemberState.Alive || state === MemberState.Suspect;
}

type TypedArray = Uint8Array | Uint32Array | Int32Array | Float64Array;

function grow<A extends TypedArray>(array: A, size: number): A {
  const bigger = new (array.constructor as new (n: number) => A)(size);
  bigger.set(array as never);
  return bigger;
}
