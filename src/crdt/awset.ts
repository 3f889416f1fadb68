/**
 * Add-wins set (observed-remove set without tombstones): a dot map element -> dot set.
 *
 * add(e) gives e a fresh dot and drops the dots of e it saw; remove(e) drops the dots of e it saw.
 * An add concurrent with a remove keeps its fresh dot: add wins. Removed elements leave nothing
 * behind but their dots in the causal context, which compacts into the version vector.
 * Elements are strings (addresses, names, tags: what overlay state needs).
 */
import { compareDots, type Dot } from './context.js';
import { adoptDots, joinDotSet, removeCoveredDots, type DotSetStore } from './dot-set.js';
import type { StoreOps } from './store.js';

export type AwSetStore = Map<string, DotSetStore>;

export const AW_SET_OPS: StoreOps<AwSetStore, string[]> = {
  kind: 'awset',
  bottom: () => new Map(),
  isBottom: (store) => store.size === 0,
  clone: (store) => new Map([...store].map(([e, dots]) => [e, [...dots]])),
  join(s1, c1, s2, c2, tracker) {
    for (const [element, dots2] of s2) {
      const dots1 = s1.get(element) ?? [];
      const joined = joinDotSet(dots1, c1, dots2, c2, tracker);
      if (joined.length === 0) s1.delete(element);
      else s1.set(element, joined);
    }
    // Elements only on the left lose the dots the right side's context covers. (Deleting the
    // current key while iterating a Map is well defined.)
    for (const [element, dots1] of s1) {
      if (s2.has(element)) continue;
      if (removeCoveredDots(dots1, c2, tracker).length === 0) s1.delete(element);
    }
    return s1;
  },
  adopt(s2, c1, tracker) {
    const out: AwSetStore = new Map();
    for (const [element, dots2] of s2) {
      const kept = adoptDots(dots2, c1, tracker);
      if (kept.length > 0) out.set(element, kept);
    }
    return out;
  },
  removeCovered(store, context, tracker) {
    for (const [element, dots] of store) if (removeCoveredDots(dots, context, tracker).length === 0) store.delete(element);
    return store;
  },
  forEachDot(store, fn) {
    for (const dots of store.values()) for (const d of dots) fn(d.actor, d.counter);
  },
  value: (store) => [...store.keys()].sort(),
  canonical: (store) => [...store.keys()].sort().map((e) => [e, [...(store.get(e) as Dot[])].sort(compareDots).map((d) => [d.actor, d.counter])]),
};
