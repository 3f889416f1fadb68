/**
 * Dots and causal contexts.
 *
 * A dot `(actor, counter)` names one event: the counter-th update made by `actor`. A causal
 * context is the set of dots a replica has seen, kept compact as a version vector (every dot
 * `(a, 1..vv[a])`) plus a dot cloud (dots above the vector's frontier that arrived out of
 * order). Compaction moves cloud dots into the vector as gaps fill, so a replica that has seen
 * everything holds one number per actor, however many updates and removals happened: there are
 * no tombstones.
 *
 * Invariant: no cloud dot of an actor is <= that actor's vector entry, and no cloud dot equals
 * vector entry + 1 (it would have been absorbed).
 */
import { CrdtError, CrdtErrorCode } from './errors.js';
import { setOwn } from './plain.js';

export interface Dot {
  readonly actor: string;
  readonly counter: number;
}

/** Longest actor identifier accepted (node ids are far shorter). */
export const MAX_ACTOR_LENGTH = 256;

export function checkActor(actor: unknown, path = 'actor'): asserts actor is string {
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > MAX_ACTOR_LENGTH) {
    throw new CrdtError(CrdtErrorCode.InvalidArgument, `${path} = ${JSON.stringify(actor)} is not a valid actor; expected a string of 1 to ${MAX_ACTOR_LENGTH} characters`, { path });
  }
}

export function compareDots(a: Dot, b: Dot): number {
  if (a.actor !== b.actor) return a.actor < b.actor ? -1 : 1;
  return a.counter - b.counter;
}

export class CausalContext {
  private readonly vv = new Map<string, number>();
  private readonly cloud = new Map<string, Set<number>>();

  /** A context holding exactly the given dots. */
  static of(dots: Iterable<Dot>): CausalContext {
    const ctx = new CausalContext();
    for (const d of dots) ctx.add(d.actor, d.counter);
    return ctx;
  }

  has(actor: string, counter: number): boolean {
    const frontier = this.vv.get(actor);
    if (frontier !== undefined && counter <= frontier) return true;
    if (this.cloud.size === 0) return false;
    const extra = this.cloud.get(actor);
    return extra?.has(counter) === true;
  }

  hasDot(dot: Dot): boolean {
    return this.has(dot.actor, dot.counter);
  }

  /** Adds one dot, compacting as it goes. */
  add(actor: string, counter: number): void {
    const frontier = this.vv.get(actor) ?? 0;
    if (counter <= frontier) return;
    if (counter === frontier + 1) {
      this.vv.set(actor, counter);
      this.absorb(actor);
      return;
    }
    let extra = this.cloud.get(actor);
    if (extra === undefined) {
      extra = new Set();
      this.cloud.set(actor, extra);
    }
    extra.add(counter);
  }

  /** Adds every dot (actor, 1..frontier) without iterating them. */
  addUpTo(actor: string, frontier: number): void {
    const mine = this.vv.get(actor) ?? 0;
    if (frontier <= mine) return;
    this.vv.set(actor, frontier);
    this.absorb(actor);
  }

  /** The counter `actor`'s next update gets: one above any of its dots seen. */
  nextCounter(actor: string): number {
    let max = this.vv.get(actor) ?? 0;
    const extra = this.cloud.get(actor);
    if (extra !== undefined) for (const c of extra) if (c > max) max = c;
    return max + 1;
  }

  /** Adds every dot of `other` (in place). */
  merge(other: CausalContext): void {
    for (const [actor, frontier] of other.vv) {
      const mine = this.vv.get(actor) ?? 0;
      if (frontier > mine) {
        this.vv.set(actor, frontier);
        const extra = this.cloud.get(actor);
        if (extra !== undefined) {
          for (const c of extra) if (c <= frontier) extra.delete(c);
          if (extra.size === 0) this.cloud.delete(actor);
        }
      }
    }
    for (const [actor, extra] of other.cloud) for (const c of extra) this.add(actor, c);
    for (const actor of other.vv.keys()) this.absorb(actor);
  }

  /**
   * True when some actor has dots in both contexts. When it is false, no dot of a store under
   * `this` can be covered by `other`, so a join can skip looking for removals dot by dot.
   */
  sharesActorWith(other: CausalContext): boolean {
    const [small, large] = this.actorCount() <= other.actorCount() ? [this, other] : [other, this];
    for (const actor of small.vv.keys()) if (large.vv.has(actor) || large.cloud.has(actor)) return true;
    for (const actor of small.cloud.keys()) if (large.vv.has(actor) || large.cloud.has(actor)) return true;
    return false;
  }

  private actorCount(): number {
    return this.vv.size + this.cloud.size;
  }

  clone(): CausalContext {
    const copy = new CausalContext();
    for (const [actor, frontier] of this.vv) copy.vv.set(actor, frontier);
    for (const [actor, extra] of this.cloud) copy.cloud.set(actor, new Set(extra));
    return copy;
  }

  isEmpty(): boolean {
    return this.vv.size === 0 && this.cloud.size === 0;
  }

  /** How many dots the context holds (may be large: the vector stands for whole ranges). */
  dotCount(): number {
    let n = 0;
    for (const frontier of this.vv.values()) n += frontier;
    for (const extra of this.cloud.values()) n += extra.size;
    return n;
  }

  /** Size of the representation: vector entries and cloud dots. This is what must stay O(actors). */
  representationSize(): { vectorEntries: number; cloudDots: number } {
    let cloudDots = 0;
    for (const extra of this.cloud.values()) cloudDots += extra.size;
    return { vectorEntries: this.vv.size, cloudDots };
  }

  /** Calls `fn` for every dot. Only for small contexts: check `dotCount()` first. */
  forEachDot(fn: (actor: string, counter: number) => void): void {
    for (const [actor, frontier] of this.vv) for (let c = 1; c <= frontier; c++) fn(actor, c);
    for (const [actor, extra] of this.cloud) for (const c of extra) fn(actor, c);
  }

  /** Vector entries sorted by actor. */
  vector(): [string, number][] {
    return [...this.vv.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Cloud dots sorted by actor, then counter. */
  cloudDots(): Dot[] {
    const out: Dot[] = [];
    for (const [actor, extra] of this.cloud) for (const counter of extra) out.push({ actor, counter });
    return out.sort(compareDots);
  }

  equals(other: CausalContext): boolean {
    if (this.vv.size !== other.vv.size || this.cloud.size !== other.cloud.size) return false;
    for (const [actor, frontier] of this.vv) if (other.vv.get(actor) !== frontier) return false;
    for (const [actor, extra] of this.cloud) {
      const theirs = other.cloud.get(actor);
      if (theirs === undefined || theirs.size !== extra.size) return false;
      for (const c of extra) if (!theirs.has(c)) return false;
    }
    return true;
  }

  /** A plain form for canonical comparison and JSON: `{ vv: {actor: n}, cloud: {actor: [n...]} }`, sorted. */
  toJSON(): { vv: Record<string, number>; cloud: Record<string, number[]> } {
    const vv: Record<string, number> = {};
    for (const [actor, frontier] of this.vector()) setOwn(vv, actor, frontier);
    const cloud: Record<string, number[]> = {};
    for (const actor of [...this.cloud.keys()].sort()) {
      setOwn(
        cloud,
        actor,
        [...(this.cloud.get(actor) as Set<number>)].sort((a, b) => a - b),
      );
    }
    return { vv, cloud };
  }

  /** Moves cloud dots of `actor` that continue its vector into the vector. */
  private absorb(actor: string): void {
    const extra = this.cloud.get(actor);
    if (extra === undefined) return;
    let frontier = this.vv.get(actor) ?? 0;
    while (extra.delete(frontier + 1)) frontier++;
    if (frontier > 0) this.vv.set(actor, frontier);
    for (const c of extra) if (c <= frontier) extra.delete(c);
    if (extra.size === 0) this.cloud.delete(actor);
  }
}
