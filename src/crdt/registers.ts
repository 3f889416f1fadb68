/**
 * Registers: dot functions (dot -> value).
 *
 * Multi-value register: a write adds a fresh dot with its value and drops the dots it saw.
 * Concurrent writes all survive; reading gives every surviving value (sorted, duplicates once).
 * A removal (from a map) concurrent with a write keeps the write.
 *
 * Last-writer-wins register: the caller supplies a marker, `{ ts, actor }` (typically a hybrid
 * logical timestamp and the writing node), ordered by ts then actor; the type never reads a
 * clock. Stored like a multi-value register, each write holding its marker; reading gives the
 * value with the greatest marker. A write whose marker is below the greatest one seen changes
 * nothing (it would lose anyway), so the surviving entries are only concurrent writes.
 * A removal concurrent with a write keeps the write.
 *
 * Two writes with equal markers and different values are a typed error
 * (LASHUP_ERR_CRDT_LWW_CONFLICT): equal markers mean a broken marker source or two nodes sharing
 * one identity. A local write that would create one throws. A join that brings two together
 * still completes (a refused join would leave the replicas unable to ever converge: every
 * exchange would be refused again) and reports the conflict to its caller, who logs and counts
 * it; reads then break the tie by the values' total order, the same on every replica.
 */
import { compareDots, type CausalContext, type Dot } from './context.js';
import { adoptDots, joinDotsInPlace, removeCoveredDots } from './dot-set.js';
import { CrdtError, CrdtErrorCode } from './errors.js';
import { comparePlain, plainEquals, plainToJson, type PlainValue } from './plain.js';
import type { DotTracker, StoreOps } from './store.js';

export interface LwwMarker {
  /** Non-negative safe integer chosen by the caller (a hybrid logical timestamp, say). */
  readonly ts: number;
  /** Breaks ties between equal timestamps. */
  readonly actor: string;
}

export function compareMarkers(a: LwwMarker, b: LwwMarker): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.actor !== b.actor) return a.actor < b.actor ? -1 : 1;
  return 0;
}

export interface MvEntry extends Dot {
  readonly value: PlainValue;
}

export interface LwwEntry extends MvEntry {
  readonly marker: LwwMarker;
}

export type MvStore = MvEntry[];
export type LwwStore = LwwEntry[];

function joinDotFun<E extends Dot>(s1: E[], c1: CausalContext, s2: E[], c2: CausalContext, tracker: DotTracker | undefined): E[] {
  joinDotsInPlace(s1, c1, s2, c2, tracker);
  return s1;
}

/** The LWW join: a dot-function join, then a report of any marker conflict among the result. */
function joinLww(s1: LwwEntry[], c1: CausalContext, s2: LwwEntry[], c2: CausalContext, tracker: DotTracker | undefined): LwwEntry[] {
  const added = joinDotsInPlace(s1, c1, s2, c2, tracker);
  // A conflict needs an added entry next to another one; a join that added nothing adds no conflict.
  if (added > 0 && s1.length > 1 && tracker?.conflict !== undefined) {
    const conflict = findLwwConflict(s1);
    if (conflict !== undefined) tracker.conflict(conflict);
  }
  return s1;
}

/** The first pair of entries carrying one marker but different values, as a typed error. */
export function findLwwConflict(entries: readonly LwwEntry[]): CrdtError | undefined {
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const a = entries[i] as LwwEntry;
      const b = entries[j] as LwwEntry;
      if (compareMarkers(a.marker, b.marker) === 0 && !plainEquals(a.value, b.value)) return lwwConflict(a.marker, a.value, b.value);
    }
  }
  return undefined;
}

export function lwwConflict(marker: LwwMarker, a: PlainValue, b: PlainValue): CrdtError {
  return new CrdtError(
    CrdtErrorCode.LwwConflict,
    `two LWW writes share marker {ts: ${marker.ts}, actor: ${JSON.stringify(marker.actor)}} with different values ` +
      `(${JSON.stringify(plainToJson(a))} and ${JSON.stringify(plainToJson(b))}); markers must be unique per write`,
    { marker: { ts: marker.ts, actor: marker.actor } },
  );
}

/**
 * The entry with the greatest marker, or undefined for an empty register. Equal markers (a
 * conflict) are ordered by value, so every replica reads the same one.
 */
export function lwwWinner(store: readonly LwwEntry[]): LwwEntry | undefined {
  let best: LwwEntry | undefined;
  for (const e of store) {
    if (best === undefined) {
      best = e;
      continue;
    }
    const order = compareMarkers(e.marker, best.marker);
    if (order > 0 || (order === 0 && comparePlain(e.value, best.value) > 0)) best = e;
  }
  return best;
}

function dotFunForEach(store: readonly Dot[], fn: (actor: string, counter: number) => void): void {
  for (const e of store) fn(e.actor, e.counter);
}

export const MV_REGISTER_OPS: StoreOps<MvStore, PlainValue[]> = {
  kind: 'mvreg',
  bottom: () => [],
  isBottom: (store) => store.length === 0,
  clone: (store) => [...store],
  join: joinDotFun,
  adopt: adoptDots,
  removeCovered: removeCoveredDots,
  forEachDot: dotFunForEach,
  value: (store) => {
    const values = store.map((e) => e.value).sort(comparePlain);
    return values.filter((v, i) => i === 0 || comparePlain(values[i - 1] as PlainValue, v) !== 0);
  },
  canonical: (store) => [...store].sort(compareDots).map((e) => [e.actor, e.counter, plainToJson(e.value)]),
};

export const LWW_REGISTER_OPS: StoreOps<LwwStore, PlainValue | undefined> = {
  kind: 'lww',
  bottom: () => [],
  isBottom: (store) => store.length === 0,
  clone: (store) => [...store],
  join: joinLww,
  adopt: adoptDots,
  removeCovered: removeCoveredDots,
  forEachDot: dotFunForEach,
  value: (store) => lwwWinner(store)?.value,
  canonical: (store) => [...store].sort(compareDots).map((e) => [e.actor, e.counter, e.marker.ts, e.marker.actor, plainToJson(e.value)]),
};
