/**
 * The OR-map store: a dot map from (name, kind) to any store, nested maps included.
 *
 * Each entry is keyed by its name and its kind together (a "slot"), as Riak's maps do: two
 * replicas that concurrently use one name for different kinds still converge (both entries
 * survive) instead of one rejecting the other. Reading gives one value per name; when a name
 * holds several kinds, the richest wins the plain read (map > set > multi-value > lww > flags)
 * and `entries()` shows them all.
 *
 * An update concurrent with a removal of the same entry survives: the removal only drops the
 * dots it saw (update-wins, observed-remove). Removing an entry leaves no tombstone.
 *
 * Large maps keep an index dot -> slot, so that joining a small delta finds the few entries whose
 * dots its context covers without scanning every entry: a one-entry delta into a 10,000-entry map
 * costs one entry's work. The index is built the first time a small delta meets a map of more
 * than INDEX_MIN_ENTRIES entries, and every join maintains it through trackers from then on.
 */
import { AW_SET_OPS } from './awset.js';
import type { CausalContext } from './context.js';
import { DW_FLAG_OPS, EW_FLAG_OPS } from './dot-set.js';
import { CrdtError, CrdtErrorCode } from './errors.js';
import { setOwn } from './plain.js';
import { LWW_REGISTER_OPS, MV_REGISTER_OPS } from './registers.js';
import { KIND_TAGS, KINDS, type DotTracker, type Kind, type StoreOps } from './store.js';

export interface MapEntry {
  /** The entry's key in its map: see slotOf. */
  readonly slot: string;
  readonly name: string;
  readonly kind: Kind;
  /** The operations of `kind`, kept here so hot loops do not look them up per entry. */
  readonly ops: StoreOps<unknown, unknown>;
  store: unknown;
}

export function makeEntry(slot: string, name: string, kind: Kind, store: unknown): MapEntry {
  return { slot, name, kind, ops: opsForKind(kind), store };
}

/** Maps with more entries than this keep a dot index. */
export const INDEX_MIN_ENTRIES = 16;

/** Read precedence when one name holds several kinds: first wins. */
const READ_PRECEDENCE: readonly Kind[] = ['ormap', 'awset', 'mvreg', 'lww', 'dwflag', 'ewflag'];

export function slotOf(name: string, kind: Kind): string {
  return `${KIND_TAGS[kind]}:${name}`;
}

export class MapStore {
  readonly entries = new Map<string, MapEntry>();
  /** dot key -> slot; present only once a small-delta join of a large map needed it. */
  private index: Map<string, string> | undefined;
  /** One reusable tracker (made with the index): joins run one slot at a time, so it is re-aimed per slot. */
  private slotTracker: SlotTracker | undefined;

  get size(): number {
    return this.entries.size;
  }

  getEntry(name: string, kind: Kind): MapEntry | undefined {
    return this.entries.get(slotOf(name, kind));
  }

  /** Every entry holding `name`, whatever its kind. */
  entriesNamed(name: string): MapEntry[] {
    const out: MapEntry[] = [];
    for (const kind of KINDS) {
      const entry = this.entries.get(slotOf(name, kind));
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }

  /** The slot holding a dot, when the index exists and knows it. */
  slotOfDot(actor: string, counter: number): string | undefined {
    return this.index?.get(dotKey(actor, counter));
  }

  get indexed(): boolean {
    return this.index !== undefined;
  }

  /**
   * The tracker to hand to a nested join of `slot`: keeps the index (when there is one) and
   * forwards to the parent's tracker. Valid until the next call (it is reused).
   */
  trackerFor(slot: string, parent: DotTracker | undefined): DotTracker | undefined {
    if (this.index === undefined) return parent;
    this.slotTracker ??= new SlotTracker();
    this.slotTracker.aim(this.index, slot, parent);
    return this.slotTracker;
  }

  /** Builds the dot index from scratch (the first time a small delta meets a large map). */
  buildIndex(): void {
    const index = new Map<string, string>();
    for (const [slot, entry] of this.entries) {
      entry.ops.forEachDot(entry.store, (actor, counter) => index.set(dotKey(actor, counter), slot));
    }
    this.index = index;
  }
}

function dotKey(actor: string, counter: number): string {
  return `${counter}@${actor}`;
}

class SlotTracker implements DotTracker {
  private index!: Map<string, string>;
  private slot = '';
  private parent: DotTracker | undefined;

  aim(index: Map<string, string>, slot: string, parent: DotTracker | undefined): void {
    this.index = index;
    this.slot = slot;
    this.parent = parent;
  }

  added(actor: string, counter: number): void {
    this.index.set(dotKey(actor, counter), this.slot);
    this.parent?.added(actor, counter);
  }

  conflict(error: CrdtError): void {
    this.parent?.conflict?.(error);
  }

  removed(actor: string, counter: number): void {
    this.index.delete(dotKey(actor, counter));
    this.parent?.removed(actor, counter);
  }
}

function ops(kind: Kind): StoreOps<unknown, unknown> {
  return opsForKind(kind) as StoreOps<unknown, unknown>;
}

/**
 * Slots of `m1` that may hold a dot covered by `c2`. A context with fewer dots than the map has
 * entries (a delta) is looked up dot by dot in the index; anything larger (a full state) scans
 * the entries, and never pays for building an index it would not use.
 */
export function coveredSlots(m1: MapStore, c2: CausalContext): Iterable<string> {
  // The live key iterator is safe: callers only delete the key they are visiting.
  if (m1.size <= INDEX_MIN_ENTRIES || c2.dotCount() > m1.size) return m1.entries.keys();
  if (!m1.indexed) m1.buildIndex();
  const slots = new Set<string>();
  c2.forEachDot((actor, counter) => {
    const slot = m1.slotOfDot(actor, counter);
    if (slot !== undefined) slots.add(slot);
  });
  return slots;
}

export const OR_MAP_OPS: StoreOps<MapStore, Record<string, unknown>> = {
  kind: 'ormap',
  bottom: () => new MapStore(),
  isBottom: (store) => store.size === 0,
  clone(store) {
    const copy = new MapStore();
    for (const entry of store.entries.values()) {
      copy.entries.set(entry.slot, makeEntry(entry.slot, entry.name, entry.kind, entry.ops.clone(entry.store)));
    }
    return copy;
  },
  join(m1, c1, m2, c2, tracker) {
    const before = m1.size;
    let matched = 0;
    for (const e2 of m2.entries.values()) {
      const slot = e2.slot;
      const kindOps = e2.ops;
      const e1 = m1.entries.get(slot);
      if (e1 === undefined) {
        const adopted = kindOps.adopt(e2.store, c1, m1.trackerFor(slot, tracker));
        if (!kindOps.isBottom(adopted)) m1.entries.set(slot, makeEntry(slot, e2.name, e2.kind, adopted));
        continue;
      }
      matched++;
      const joined = kindOps.join(e1.store, c1, e2.store, c2, m1.trackerFor(slot, tracker));
      if (kindOps.isBottom(joined)) m1.entries.delete(slot);
      else e1.store = joined;
    }
    // Entries only on the left lose the dots the right side's context covers; when every left
    // entry was also on the right there are none, and the pass is skipped.
    if (c2.isEmpty() || m1.size === 0 || matched === before) return m1;
    // A left-only entry can only lose dots of actors c2 knows; with none in common (two replicas
    // that never saw each other's writers) there is nothing to look for.
    if (!c1.sharesActorWith(c2)) return m1;
    for (const slot of coveredSlots(m1, c2)) {
      if (m2.entries.has(slot)) continue;
      removeCoveredFromSlot(m1, slot, c2, tracker);
    }
    return m1;
  },
  adopt(m2, c1, tracker) {
    const out = new MapStore();
    for (const e2 of m2.entries.values()) {
      const adopted = e2.ops.adopt(e2.store, c1, out.trackerFor(e2.slot, tracker));
      if (!e2.ops.isBottom(adopted)) out.entries.set(e2.slot, makeEntry(e2.slot, e2.name, e2.kind, adopted));
    }
    return out;
  },
  removeCovered(store, context, tracker) {
    if (context.isEmpty() || store.size === 0) return store;
    for (const slot of coveredSlots(store, context)) removeCoveredFromSlot(store, slot, context, tracker);
    return store;
  },
  forEachDot(store, fn) {
    for (const entry of store.entries.values()) entry.ops.forEachDot(entry.store, fn);
  },
  value(store) {
    const out: Record<string, unknown> = {};
    const names = new Set<string>();
    for (const entry of store.entries.values()) names.add(entry.name);
    for (const name of [...names].sort()) {
      for (const kind of READ_PRECEDENCE) {
        const entry = store.entries.get(slotOf(name, kind));
        if (entry !== undefined) {
          setOwn(out, name, ops(kind).value(entry.store));
          break;
        }
      }
    }
    return out;
  },
  canonical(store) {
    return [...store.entries.keys()].sort().map((slot) => {
      const entry = store.entries.get(slot) as MapEntry;
      return [entry.name, entry.kind, entry.ops.canonical(entry.store)];
    });
  },
};

function removeCoveredFromSlot(store: MapStore, slot: string, context: CausalContext, tracker: DotTracker | undefined): void {
  const entry = store.entries.get(slot);
  if (entry === undefined) return;
  const kindOps = entry.ops;
  const kept = kindOps.removeCovered(entry.store, context, store.trackerFor(slot, tracker));
  if (kindOps.isBottom(kept)) store.entries.delete(slot);
  else entry.store = kept;
}

export function kindMismatch(expected: Kind, found: Kind): CrdtError {
  return new CrdtError(CrdtErrorCode.KindMismatch, `cannot join a ${found} into a ${expected}; both sides must be of one kind`, {
    expected,
    found,
  });
}

/**
 * Kind -> store operations. It lives with the OR-map because the map is the one recursive kind:
 * its operations look up those of the kinds nested in it (itself included). It used to be a
 * module of its own, which made an import cycle with this one (registry -> map-store ->
 * registry). Built on first use, when every table above is initialised.
 */
let kindTable: Record<Kind, StoreOps<unknown, unknown>> | undefined;

export function opsForKind(kind: Kind): StoreOps<unknown, unknown> {
  kindTable ??= {
    ewflag: EW_FLAG_OPS as StoreOps<unknown, unknown>,
    dwflag: DW_FLAG_OPS as StoreOps<unknown, unknown>,
    lww: LWW_REGISTER_OPS as StoreOps<unknown, unknown>,
    mvreg: MV_REGISTER_OPS as StoreOps<unknown, unknown>,
    awset: AW_SET_OPS as StoreOps<unknown, unknown>,
    ormap: OR_MAP_OPS as StoreOps<unknown, unknown>,
  };
  return kindTable[kind];
}
