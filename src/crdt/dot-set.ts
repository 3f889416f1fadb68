/**
 * The dot set store and the two flags built on it.
 *
 * Enable-wins flag: enable adds a fresh dot and drops the dots it saw; disable drops the dots it
 * saw. Reads true while any dot survives. A disable concurrent with an enable cannot remove the
 * enable's fresh dot (it never saw it): enable wins.
 *
 * Disable-wins flag: the mirror image. Disable adds a fresh dot; enable drops the dots it saw;
 * reads true while no dot survives. A concurrent disable keeps its fresh dot: disable wins. Note
 * that its empty state, and so a new flag or one removed from a map, reads true (enabled), as in
 * the paper; call disable to start from false.
 */
import { compareDots, type CausalContext, type Dot } from './context.js';
import type { DotTracker, Kind, StoreOps } from './store.js';

export type DotSetStore = Dot[];

export function dotIn(list: readonly Dot[], actor: string, counter: number): boolean {
  for (const d of list) if (d.counter === counter && d.actor === actor) return true;
  return false;
}

/** True when joining would change s1 (checked without allocating: most joins of equal replicas change nothing). */
function dotsJoinChanges(s1: readonly Dot[], c1: CausalContext, s2: readonly Dot[], c2: CausalContext): boolean {
  for (const d of s1) if (!dotIn(s2, d.actor, d.counter) && c2.has(d.actor, d.counter)) return true;
  for (const d of s2) if (!dotIn(s1, d.actor, d.counter) && !c1.has(d.actor, d.counter)) return true;
  return false;
}

/**
 * The join of two lists of dotted items (a dot set, or a dot function whose items carry values),
 * in place on `s1` and returning how many items it added. `s1` belongs to the left state alone
 * (clones and joins never share arrays), so it is edited rather than copied, which keeps a full
 * join of two large maps from allocating an array per entry. Items themselves are immutable and
 * shared freely.
 */
export function joinDotsInPlace<E extends Dot>(s1: E[], c1: CausalContext, s2: readonly E[], c2: CausalContext, tracker: DotTracker | undefined): number {
  // Replicas that agree hold the same single item: the commonest case, answered first.
  if (s1.length === 1 && s2.length === 1 && (s1[0] as E).counter === (s2[0] as E).counter && (s1[0] as E).actor === (s2[0] as E).actor) return 0;
  if (!dotsJoinChanges(s1, c1, s2, c2)) return 0;
  // Additions are decided against the original left items, before any is dropped.
  let additions: E[] | undefined;
  for (const e of s2)
    if (!dotIn(s1, e.actor, e.counter) && !c1.has(e.actor, e.counter)) {
      additions ??= [];
      additions.push(e);
    }
  let kept = 0;
  const originalLength = s1.length;
  for (let i = 0; i < originalLength; i++) {
    const e = s1[i] as E;
    if (dotIn(s2, e.actor, e.counter) || !c2.has(e.actor, e.counter)) s1[kept++] = e;
    else tracker?.removed(e.actor, e.counter);
  }
  s1.length = kept;
  if (additions === undefined) return 0;
  for (const e of additions) {
    s1.push(e);
    tracker?.added(e.actor, e.counter);
  }
  return additions.length;
}

export function joinDotSet(s1: DotSetStore, c1: CausalContext, s2: DotSetStore, c2: CausalContext, tracker: DotTracker | undefined): DotSetStore {
  joinDotsInPlace(s1, c1, s2, c2, tracker);
  return s1;
}

/** The items of `s2` whose dots `c1` does not cover, in a new array (see StoreOps.adopt). */
export function adoptDots<E extends Dot>(s2: readonly E[], c1: CausalContext, tracker: DotTracker | undefined): E[] {
  const out: E[] = [];
  for (const e of s2) {
    if (c1.has(e.actor, e.counter)) continue;
    out.push(e);
    tracker?.added(e.actor, e.counter);
  }
  return out;
}

/** Drops from `store` (in place) every item whose dot `context` covers: a join with an empty store. */
export function removeCoveredDots<E extends Dot>(store: E[], context: CausalContext, tracker: DotTracker | undefined): E[] {
  let kept = 0;
  for (let i = 0; i < store.length; i++) {
    const d = store[i] as E;
    if (context.has(d.actor, d.counter)) tracker?.removed(d.actor, d.counter);
    else store[kept++] = d;
  }
  store.length = kept;
  return store;
}

function makeFlagOps(kind: Kind, read: (store: DotSetStore) => boolean): StoreOps<DotSetStore, boolean> {
  return {
    kind,
    bottom: () => [],
    isBottom: (store) => store.length === 0,
    clone: (store) => [...store],
    join: joinDotSet,
    adopt: adoptDots,
    removeCovered: removeCoveredDots,
    forEachDot: (store, fn) => {
      for (const d of store) fn(d.actor, d.counter);
    },
    value: read,
    canonical: (store) => [...store].sort(compareDots).map((d) => [d.actor, d.counter]),
  };
}

export const EW_FLAG_OPS = makeFlagOps('ewflag', (store) => store.length > 0);
export const DW_FLAG_OPS = makeFlagOps('dwflag', (store) => store.length === 0);
