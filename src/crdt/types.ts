/**
 * The CRDT types as values: a store paired with its causal context, with delta mutators.
 *
 * Every mutator computes a delta (a small state of the same type), joins it into the state in
 * place, and returns it: ship the delta to other replicas and `join` it there. `join` merges
 * states and deltas alike; it is commutative, associative and idempotent, so deltas may be lost,
 * duplicated and reordered as long as some later exchange (a full state, or anti-entropy)
 * covers what was lost.
 *
 * What a concurrent update and remove do, per type:
 * - EWFlag: enable wins over a concurrent disable.
 * - DWFlag: disable wins over a concurrent enable. Its empty state reads true.
 * - LWWRegister: the greatest marker wins; as a map value, a write wins over a concurrent removal.
 * - MVRegister: concurrent writes all survive; a write wins over a concurrent removal.
 * - AWSet: an add wins over a concurrent remove of the same element.
 * - ORMap: an update of an entry wins over a concurrent removal of that entry (the update's
 *   fields survive; fields the removal saw are gone).
 */
import { CausalContext, checkActor, type Dot } from './context.js';
import type { DotSetStore } from './dot-set.js';
import type { AwSetStore } from './awset.js';
import { stateDigest } from './digest.js';
import { CrdtError, CrdtErrorCode } from './errors.js';
import { coveredSlots, kindMismatch, makeEntry, MapStore, OR_MAP_OPS, opsForKind, slotOf } from './map-store.js';
import { plainEquals, toPlain, type PlainValue } from './plain.js';
import { compareMarkers, lwwConflict, lwwWinner, type LwwEntry, type LwwMarker, type LwwStore, type MvStore } from './registers.js';
import type { DotTracker, Kind, StoreOps } from './store.js';

/** A delta for one store, before it is wrapped into its enclosing maps. */
interface LeafDelta {
  store: unknown;
  context: CausalContext;
}

function storeDots(kind: Kind, store: unknown): Dot[] {
  const dots: Dot[] = [];
  opsForKind(kind).forEachDot(store, (actor, counter) => dots.push({ actor, counter }));
  return dots;
}

/** A context with a fresh dot for `actor` plus every dot in `observed`. */
function freshContext(context: CausalContext, actor: string, observed: readonly Dot[]): { dot: Dot; context: CausalContext } {
  const dot = { actor, counter: context.nextCounter(actor) };
  const deltaContext = CausalContext.of(observed);
  deltaContext.add(dot.actor, dot.counter);
  return { dot, context: deltaContext };
}

export function checkMarker(marker: unknown): asserts marker is LwwMarker {
  const m = marker as Partial<LwwMarker> | null;
  if (m === null || typeof m !== 'object' || typeof m.ts !== 'number' || !Number.isSafeInteger(m.ts) || m.ts < 0) {
    throw new CrdtError(CrdtErrorCode.InvalidArgument, `LWW marker ${JSON.stringify(marker)} is not valid; expected { ts: a safe integer >= 0, actor: string }`, {});
  }
  checkActor(m.actor, 'marker.actor');
}

export function checkElement(element: unknown): asserts element is string {
  if (typeof element !== 'string') {
    throw new CrdtError(CrdtErrorCode.InvalidArgument, `set element ${JSON.stringify(element)} is not a string; elements are strings`, {});
  }
}

export function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw new CrdtError(CrdtErrorCode.InvalidArgument, `map key ${JSON.stringify(name)} is not a string; keys are strings`, {});
  }
}

/** Delta computations shared by the top-level types and the map mutator. Pure: nothing is changed. */
const leaf = {
  addDot(store: DotSetStore, context: CausalContext, actor: string): LeafDelta {
    const { dot, context: ctx } = freshContext(context, actor, store);
    return { store: [dot], context: ctx };
  },
  dropDots(store: DotSetStore): LeafDelta {
    return { store: [], context: CausalContext.of(store) };
  },
  lwwWrite(store: LwwStore, context: CausalContext, actor: string, marker: LwwMarker, value: PlainValue): LeafDelta | undefined {
    const winner = lwwWinner(store);
    if (winner !== undefined) {
      const order = compareMarkers(marker, winner.marker);
      if (order < 0) return undefined; // an older write loses anyway: nothing to record
      if (order === 0) {
        if (plainEquals(winner.value, value)) return undefined;
        throw lwwConflict(marker, winner.value, value);
      }
    }
    const { dot, context: ctx } = freshContext(context, actor, store);
    const entry: LwwEntry = { actor: dot.actor, counter: dot.counter, marker: { ts: marker.ts, actor: marker.actor }, value };
    return { store: [entry], context: ctx };
  },
  mvWrite(store: MvStore, context: CausalContext, actor: string, value: PlainValue): LeafDelta {
    const { dot, context: ctx } = freshContext(context, actor, store);
    return { store: [{ actor: dot.actor, counter: dot.counter, value }], context: ctx };
  },
  awAdd(store: AwSetStore, context: CausalContext, actor: string, element: string): LeafDelta {
    const { dot, context: ctx } = freshContext(context, actor, store.get(element) ?? []);
    return { store: new Map([[element, [dot]]]), context: ctx };
  },
  awRemove(store: AwSetStore, element: string): LeafDelta {
    return { store: new Map(), context: CausalContext.of(store.get(element) ?? []) };
  },
  mapRemove(store: MapStore, name: string): LeafDelta {
    const dots: Dot[] = [];
    for (const entry of store.entriesNamed(name)) dots.push(...storeDots(entry.kind, entry.store));
    return { store: new MapStore(), context: CausalContext.of(dots) };
  },
};

/** What a join did. */
export interface JoinResult {
  /** Dots the store gained or lost (0: the value cannot have changed). */
  changes: number;
  /** LWW conflicts the join brought together (LASHUP_ERR_CRDT_LWW_CONFLICT): log and count them. */
  conflicts: CrdtError[];
}

/** Counts dot changes and collects conflicts during a join. */
class JoinObserver implements DotTracker {
  changes = 0;
  readonly conflicts: CrdtError[] = [];
  added(): void {
    this.changes++;
  }
  removed(): void {
    this.changes++;
  }
  conflict(error: CrdtError): void {
    this.conflicts.push(error);
  }
}

export abstract class CausalCrdt<S, V> {
  protected constructor(
    protected readonly ops: StoreOps<S, V>,
    protected store: S,
    readonly context: CausalContext,
  ) {}

  get kind(): Kind {
    return this.ops.kind;
  }

  /** The plain value. */
  value(): V {
    return this.ops.value(this.store);
  }

  /** True for the empty state: nothing stored, nothing seen. */
  isBottom(): boolean {
    return this.ops.isBottom(this.store) && this.context.isEmpty();
  }

  /** True when the store holds nothing (the context may still remember removed dots). */
  isEmpty(): boolean {
    return this.ops.isBottom(this.store);
  }

  /**
   * Joins a state or delta of the same kind into this one, in place. Never fails for a state of
   * the same kind (a different kind is LASHUP_ERR_CRDT_KIND_MISMATCH); LWW conflicts it meets are
   * reported in the result, not thrown (see registers.ts).
   */
  join(other: CausalCrdt<S, V>): JoinResult {
    if (other.kind !== this.kind) throw kindMismatch(this.kind, other.kind);
    const observer = new JoinObserver();
    this.store = this.ops.join(this.store, this.context, other.store, other.context, observer);
    this.context.merge(other.context);
    return { changes: observer.changes, conflicts: observer.conflicts };
  }

  /** A deep copy. */
  clone(): this {
    return this.make(this.ops.clone(this.store), this.context.clone());
  }

  /** A JSON-able canonical form: equal states give deeply equal forms. */
  canonical(): { kind: Kind; context: ReturnType<CausalContext['toJSON']>; store: unknown } {
    return { kind: this.kind, context: this.context.toJSON(), store: this.ops.canonical(this.store) };
  }

  /** Same store and same context. */
  equals(other: CausalCrdt<S, V>): boolean {
    return other.kind === this.kind && JSON.stringify(this.canonical()) === JSON.stringify(other.canonical());
  }

  /** Every dot the store holds (live dots). */
  liveDots(): Dot[] {
    return storeDots(this.kind, this.store);
  }

  /**
   * The part of this state that a replica whose context is `seen` lacks: every stored dot not in
   * `seen` (with its value), and a context holding exactly those dots. Joining it adds what was
   * missing and removes nothing (its context covers only its own dots). With `removalsFor`
   * (see below) it repairs a replica in proportion to the difference, not to the state.
   */
  unseenBy(seen: CausalContext): this {
    const dots = new CausalContext();
    const adopted = this.ops.adopt(this.store, seen, {
      added: (actor, counter) => dots.add(actor, counter),
      removed: () => undefined,
    });
    return this.make(adopted, dots);
  }

  /**
   * The removals this state holds against a replica with live dots `theirLive`: a delta (empty
   * store) whose context is every dot of `theirLive` this state has seen but no longer stores.
   * Joining it into that replica drops exactly those dots.
   */
  removalsFor(theirLive: CausalContext, maxDots = 4_000_000): this {
    // A peer's context can claim 2^53 dots in a few bytes: never enumerate one unchecked.
    const claimed = theirLive.dotCount();
    if (claimed > maxDots) {
      throw new CrdtError(CrdtErrorCode.DecodeLimit, `a live-dot set of ${claimed} dots exceeds the limit of ${maxDots}`, { dots: claimed, maxDots });
    }
    const mine = new Set<string>();
    this.ops.forEachDot(this.store, (actor, counter) => mine.add(`${counter}@${actor}`));
    const removed = new CausalContext();
    theirLive.forEachDot((actor, counter) => {
      if (this.context.has(actor, counter) && !mine.has(`${counter}@${actor}`)) removed.add(actor, counter);
    });
    return this.make(this.ops.bottom(), removed);
  }

  /** A 52-bit digest of this state (context and live dots): equal states, equal digests. */
  digest(): number {
    return stateDigest(this.context, (fn) => this.ops.forEachDot(this.store, fn));
  }

  /** The live dots as a (compacting) context: what `removalsFor` needs from a replica. */
  liveContext(): CausalContext {
    const live = new CausalContext();
    this.ops.forEachDot(this.store, (actor, counter) => live.add(actor, counter));
    return live;
  }

  /** @internal The raw store, for the codec and for enclosing structures. */
  rawStore(): S {
    return this.store;
  }

  protected abstract make(store: S, context: CausalContext): this;

  /** Joins a computed delta into this state and returns it as a state of this type. */
  protected applyLeaf(delta: LeafDelta | undefined): this {
    const result = delta === undefined ? this.make(this.ops.bottom(), new CausalContext()) : this.make(delta.store as S, delta.context);
    this.join(result);
    return result;
  }
}

/** Joins two states (or deltas) into a new one; neither input changes. */
export function join<T extends CausalCrdt<unknown, unknown>>(a: T, b: T): T {
  const out = a.clone();
  out.join(b);
  return out;
}

export class EWFlag extends CausalCrdt<DotSetStore, boolean> {
  constructor(store: DotSetStore = [], context: CausalContext = new CausalContext()) {
    super(opsForKind('ewflag') as StoreOps<DotSetStore, boolean>, store, context);
  }
  protected make(store: DotSetStore, context: CausalContext): this {
    return new EWFlag(store, context) as this;
  }
  enable(actor: string): EWFlag {
    checkActor(actor);
    return this.applyLeaf(leaf.addDot(this.store, this.context, actor));
  }
  disable(actor: string): EWFlag {
    checkActor(actor);
    return this.applyLeaf(leaf.dropDots(this.store));
  }
}

export class DWFlag extends CausalCrdt<DotSetStore, boolean> {
  constructor(store: DotSetStore = [], context: CausalContext = new CausalContext()) {
    super(opsForKind('dwflag') as StoreOps<DotSetStore, boolean>, store, context);
  }
  protected make(store: DotSetStore, context: CausalContext): this {
    return new DWFlag(store, context) as this;
  }
  enable(actor: string): DWFlag {
    checkActor(actor);
    return this.applyLeaf(leaf.dropDots(this.store));
  }
  disable(actor: string): DWFlag {
    checkActor(actor);
    return this.applyLeaf(leaf.addDot(this.store, this.context, actor));
  }
}

export class LWWRegister extends CausalCrdt<LwwStore, PlainValue | undefined> {
  constructor(store: LwwStore = [], context: CausalContext = new CausalContext()) {
    super(opsForKind('lww') as StoreOps<LwwStore, PlainValue | undefined>, store, context);
  }
  protected make(store: LwwStore, context: CausalContext): this {
    return new LWWRegister(store, context) as this;
  }
  /** Writes `value` under `marker`. An older marker changes nothing (the delta is empty). */
  write(actor: string, marker: LwwMarker, value: unknown): LWWRegister {
    checkActor(actor);
    checkMarker(marker);
    return this.applyLeaf(leaf.lwwWrite(this.store, this.context, actor, marker, toPlain(value)));
  }
  /** The winning marker, or undefined when empty. */
  marker(): LwwMarker | undefined {
    return lwwWinner(this.store)?.marker;
  }
}

export class MVRegister extends CausalCrdt<MvStore, PlainValue[]> {
  constructor(store: MvStore = [], context: CausalContext = new CausalContext()) {
    super(opsForKind('mvreg') as StoreOps<MvStore, PlainValue[]>, store, context);
  }
  protected make(store: MvStore, context: CausalContext): this {
    return new MVRegister(store, context) as this;
  }
  write(actor: string, value: unknown): MVRegister {
    checkActor(actor);
    return this.applyLeaf(leaf.mvWrite(this.store, this.context, actor, toPlain(value)));
  }
}

export class AWSet extends CausalCrdt<AwSetStore, string[]> {
  constructor(store: AwSetStore = new Map(), context: CausalContext = new CausalContext()) {
    super(opsForKind('awset') as StoreOps<AwSetStore, string[]>, store, context);
  }
  protected make(store: AwSetStore, context: CausalContext): this {
    return new AWSet(store, context) as this;
  }
  add(actor: string, element: string): AWSet {
    checkActor(actor);
    checkElement(element);
    return this.applyLeaf(leaf.awAdd(this.store, this.context, actor, element));
  }
  remove(actor: string, element: string): AWSet {
    checkActor(actor);
    checkElement(element);
    return this.applyLeaf(leaf.awRemove(this.store, element));
  }
  has(element: string): boolean {
    return this.store.has(element);
  }
}

/** A mutation of one OR-map, possibly nested: every operation applies at once and adds to one delta. */
export class MapMutator {
  /** @internal */
  constructor(
    private readonly root: ORMap,
    private readonly actor: string,
    private readonly path: readonly string[],
    private readonly accumulated: ORMap,
  ) {}

  /** The LWW register `name` of this map. */
  lww(name: string): { write(marker: LwwMarker, value: unknown): void } {
    checkName(name);
    return {
      write: (marker, value) => {
        checkMarker(marker);
        const plain = toPlain(value);
        this.commit(name, 'lww', leaf.lwwWrite(this.current(name, 'lww') as LwwStore, this.root.context, this.actor, marker, plain));
      },
    };
  }

  mvreg(name: string): { write(value: unknown): void } {
    checkName(name);
    return {
      write: (value) => {
        const plain = toPlain(value);
        this.commit(name, 'mvreg', leaf.mvWrite(this.current(name, 'mvreg') as MvStore, this.root.context, this.actor, plain));
      },
    };
  }

  ewflag(name: string): { enable(): void; disable(): void } {
    checkName(name);
    return {
      enable: () => this.commit(name, 'ewflag', leaf.addDot(this.current(name, 'ewflag') as DotSetStore, this.root.context, this.actor)),
      disable: () => this.commit(name, 'ewflag', leaf.dropDots(this.current(name, 'ewflag') as DotSetStore)),
    };
  }

  dwflag(name: string): { enable(): void; disable(): void } {
    checkName(name);
    return {
      enable: () => this.commit(name, 'dwflag', leaf.dropDots(this.current(name, 'dwflag') as DotSetStore)),
      disable: () => this.commit(name, 'dwflag', leaf.addDot(this.current(name, 'dwflag') as DotSetStore, this.root.context, this.actor)),
    };
  }

  awset(name: string): { add(element: string): void; remove(element: string): void } {
    checkName(name);
    return {
      add: (element) => {
        checkElement(element);
        this.commit(name, 'awset', leaf.awAdd(this.current(name, 'awset') as AwSetStore, this.root.context, this.actor, element));
      },
      remove: (element) => {
        checkElement(element);
        this.commit(name, 'awset', leaf.awRemove(this.current(name, 'awset') as AwSetStore, element));
      },
    };
  }

  /** Mutates the nested map `name` (created by its first update). */
  map(name: string, fn: (nested: MapMutator) => void): void {
    checkName(name);
    fn(new MapMutator(this.root, this.actor, [...this.path, slotOf(name, 'ormap')], this.accumulated));
  }

  /** Removes every entry named `name` (of any kind), as far as this replica has seen it. */
  remove(name: string): void {
    checkName(name);
    this.commitAtPath(leaf.mapRemove(this.mapAtPath() ?? new MapStore(), name));
  }

  /** The map store at this mutator's path, if it exists. */
  private mapAtPath(): MapStore | undefined {
    let store: MapStore | undefined = this.root.rawStore();
    for (const slot of this.path) {
      const entry: { store: unknown } | undefined = store?.entries.get(slot);
      store = entry === undefined ? undefined : (entry.store as MapStore);
    }
    return store;
  }

  private current(name: string, kind: Kind): unknown {
    return this.mapAtPath()?.getEntry(name, kind)?.store ?? opsForKind(kind).bottom();
  }

  private commit(name: string, kind: Kind, delta: LeafDelta | undefined): void {
    if (delta === undefined) return;
    const wrapped = new MapStore();
    if (!opsForKind(kind).isBottom(delta.store)) wrapped.entries.set(slotOf(name, kind), makeEntry(slotOf(name, kind), name, kind, delta.store));
    this.commitAtPath({ store: wrapped, context: delta.context });
  }

  /** Wraps a delta of the map at this path into the enclosing maps, then applies and records it. */
  private commitAtPath(delta: LeafDelta): void {
    let store = delta.store as MapStore;
    for (let i = this.path.length - 1; i >= 0; i--) {
      const slot = this.path[i] as string;
      const parent = new MapStore();
      if (store.size > 0) parent.entries.set(slot, makeEntry(slot, slot.slice(slot.indexOf(':') + 1), 'ormap', store));
      store = parent;
    }
    const step = new ORMap(store, delta.context);
    this.root.join(step);
    this.accumulated.join(step);
  }
}

export class ORMap extends CausalCrdt<MapStore, Record<string, unknown>> {
  constructor(store: MapStore = new MapStore(), context: CausalContext = new CausalContext()) {
    super(opsForKind('ormap') as StoreOps<MapStore, Record<string, unknown>>, store, context);
  }
  protected make(store: MapStore, context: CausalContext): this {
    return new ORMap(store, context) as this;
  }

  /** Applies every operation `fn` makes, in order, and returns their combined delta. */
  mutate(actor: string, fn: (map: MapMutator) => void): ORMap {
    checkActor(actor);
    const delta = new ORMap();
    fn(new MapMutator(this, actor, [], delta));
    return delta;
  }

  /** Removes every entry named `name`; returns the delta. */
  remove(actor: string, name: string): ORMap {
    return this.mutate(actor, (m) => m.remove(name));
  }

  /** Number of entries (a name holding two kinds counts twice). */
  get size(): number {
    return this.store.size;
  }

  /** Names present, sorted. */
  names(): string[] {
    return [...new Set([...this.store.entries.values()].map((e) => e.name))].sort();
  }

  has(name: string): boolean {
    return this.store.entriesNamed(name).length > 0;
  }

  /** The plain value of `name` (the richest kind when several), or undefined. */
  get(name: string): unknown {
    return (this.value() as Record<string, unknown>)[name];
  }

  /**
   * What joining `other` into this map would change, name by name (plain values before and
   * after; undefined when absent), without changing this map: the names whose value would
   * differ, sorted. Only the entries `other` touches are copied (the names it holds and the
   * entries its context may remove), so previewing a one-entry delta against a map of a
   * thousand entries costs a few entries, not a thousand (the kv store's write admission runs
   * this for every remote delta of a guarded key).
   */
  previewJoin(other: ORMap): { name: string; before: unknown; after: unknown }[] {
    const names = new Set<string>();
    for (const entry of other.store.entries.values()) names.add(entry.name);
    if (!other.context.isEmpty() && this.store.size > 0) {
      for (const slot of coveredSlots(this.store, other.context)) {
        const entry = this.store.entries.get(slot);
        if (entry !== undefined) names.add(entry.name);
      }
    }
    // Every kind a touched name holds decides its read value, so all of them are copied.
    const part = new MapStore();
    for (const name of names) {
      for (const entry of this.store.entriesNamed(name)) part.entries.set(entry.slot, makeEntry(entry.slot, entry.name, entry.kind, entry.ops.clone(entry.store)));
    }
    const before = OR_MAP_OPS.value(part);
    const trial = new ORMap(part, this.context.clone());
    trial.join(other);
    const after = trial.value();
    const out: { name: string; before: unknown; after: unknown }[] = [];
    for (const name of [...names].sort()) {
      const b = Object.hasOwn(before, name) ? before[name] : undefined;
      const a = Object.hasOwn(after, name) ? after[name] : undefined;
      if (a === b || (a !== undefined && b !== undefined && plainEquals(a as PlainValue, b as PlainValue))) continue;
      out.push({ name, before: b, after: a });
    }
    return out;
  }

  /** Every (name, kind, value), sorted by name then kind. */
  entries(): { name: string; kind: Kind; value: unknown }[] {
    return [...this.store.entries.values()]
      .map((e) => ({ name: e.name, kind: e.kind, value: opsForKind(e.kind).value(e.store) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
  }
}

/** The class for each kind (used by the codec to rebuild states). */
export function crdtOfKind(kind: Kind, store: unknown, context: CausalContext): CausalCrdt<unknown, unknown> {
  switch (kind) {
    case 'ewflag':
      return new EWFlag(store as DotSetStore, context) as CausalCrdt<unknown, unknown>;
    case 'dwflag':
      return new DWFlag(store as DotSetStore, context) as CausalCrdt<unknown, unknown>;
    case 'lww':
      return new LWWRegister(store as LwwStore, context) as CausalCrdt<unknown, unknown>;
    case 'mvreg':
      return new MVRegister(store as MvStore, context) as CausalCrdt<unknown, unknown>;
    case 'awset':
      return new AWSet(store as AwSetStore, context) as CausalCrdt<unknown, unknown>;
    case 'ormap':
      return new ORMap(store as MapStore, context) as CausalCrdt<unknown, unknown>;
  }
}
