/**
 * The dot-store interface every CRDT kind implements, after Almeida, Shoker and Baquero,
 * "Delta State Replicated Data Types" (2018).
 *
 * A causal CRDT is a pair (store, context). The stores are:
 * - a dot set (flags),
 * - a dot function, dot -> value (registers),
 * - a dot map, key -> store (add-wins set: element -> dot set; OR-map: key -> any store).
 *
 * Join keeps every dot present in both stores, plus every dot present in one store and not seen
 * by the other side's context. Everything else follows from that rule: an update concurrent
 * with a removal survives (the removal never saw its dot), and a removal is just the context
 * covering a dot the store no longer holds.
 *
 * Joins here run in place on the left store for speed (a one-entry delta into a 10,000-entry map
 * touches one entry), report every dot they add or drop to a tracker (so maps keep a dot index),
 * and never share a mutable object with the right-hand side. A join never fails: it is total, as
 * a lattice join must be (a join that could be refused would leave replicas unable to converge).
 */
import type { CausalContext } from './context.js';
import type { CrdtError } from './errors.js';

export type Kind = 'ewflag' | 'dwflag' | 'lww' | 'mvreg' | 'awset' | 'ormap';

export const KINDS: readonly Kind[] = ['ewflag', 'dwflag', 'lww', 'mvreg', 'awset', 'ormap'];

/** Wire tag per kind. Append-only: a tag, once released, keeps its meaning. */
export const KIND_TAGS: Readonly<Record<Kind, number>> = { ewflag: 1, dwflag: 2, lww: 3, mvreg: 4, awset: 5, ormap: 6 };

/** Observes a join: every dot it adds to or drops from the store, and every LWW conflict it meets. */
export interface DotTracker {
  added(actor: string, counter: number): void;
  removed(actor: string, counter: number): void;
  /** Two LWW entries ended up side by side with one marker and different values. */
  conflict?(error: CrdtError): void;
}

export interface StoreOps<S, V> {
  readonly kind: Kind;
  bottom(): S;
  isBottom(store: S): boolean;
  /** A copy that shares nothing mutable with `store`. */
  clone(store: S): S;
  /** Joins (s2, c2) into (s1, c1) in place and returns the resulting store. Contexts are not changed. */
  join(s1: S, c1: CausalContext, s2: S, c2: CausalContext, tracker: DotTracker | undefined): S;
  /**
   * A fresh copy of `s2` without the dots `c1` covers, every kept dot reported as added: the join
   * of an empty left store with (s2, c2), without building the empty store and joining into it.
   * A full join of two maps with few common entries spends most of its time here.
   */
  adopt(s2: S, c1: CausalContext, tracker: DotTracker | undefined): S;
  /** Drops from `store` every dot in `context` (a join with an empty store); returns the store. */
  removeCovered(store: S, context: CausalContext, tracker: DotTracker | undefined): S;
  forEachDot(store: S, fn: (actor: string, counter: number) => void): void;
  /** The plain value read from the store. */
  value(store: S): V;
  /** A JSON-able canonical form: equal stores give deeply equal forms. */
  canonical(store: S): unknown;
}
