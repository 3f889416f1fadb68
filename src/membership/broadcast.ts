/**
 * The transmit-limited broadcast queue: membership updates waiting to be piggybacked on probes
 * and gossip.
 *
 * Each update is sent at most `limit` times in all (SWIM's retransmit limit,
 * retransmitMult * ceil(log10(N + 1))), then dropped. Packets take the least-sent updates first
 * and, among equals, the newest, so fresh news spreads first and nothing starves. A newer update
 * about a member replaces any queued one about it (the old one is stale: sending it would only
 * make receivers ignore it).
 */

export interface Broadcast {
  /** Member name the update is about: a newer update with the same key replaces this one. */
  readonly key: string;
  readonly bytes: Uint8Array;
  transmits: number;
  live: boolean;
  /** Called after each transmission with the new count (a graceful leave waits on it). */
  readonly onTransmit: ((transmits: number) => void) | undefined;
  /** Enqueue order: levels are kept sorted by it, so "newest first" holds at every level. */
  readonly order: number;
}

/** How many times each update is sent: retransmitMult * ceil(log10(N + 1)). */
export function retransmitLimit(retransmitMult: number, members: number): number {
  return retransmitMult * Math.max(1, Math.ceil(Math.log10(members + 1)));
}

export class BroadcastQueue {
  /** levels[t]: live (or stale, removed lazily) updates sent t times, oldest enqueued first. */
  private levels: Broadcast[][] = [[]];
  private readonly byKey = new Map<string, Broadcast>();
  private freshCount = 0;
  private enqueued = 0;

  /** Updates waiting. */
  get size(): number {
    return this.byKey.size;
  }

  /** True when some update has not been sent yet (eager gossip waits for this). */
  get hasFresh(): boolean {
    return this.freshCount > 0;
  }

  enqueue(key: string, bytes: Uint8Array, onTransmit?: (transmits: number) => void): void {
    const old = this.byKey.get(key);
    if (old !== undefined) this.retire(old);
    const item: Broadcast = { key, bytes, transmits: 0, live: true, onTransmit, order: this.enqueued++ };
    this.byKey.set(key, item);
    (this.levels[0] as Broadcast[]).push(item);
    this.freshCount++;
  }

  /** Drops any queued update about `key`. */
  forget(key: string): void {
    const old = this.byKey.get(key);
    if (old !== undefined) this.retire(old);
  }

  /**
   * Takes updates whose encoded sizes fit in `budgetBytes`, least-sent first, newest first among
   * equals; counts one transmission for each, dropping those that reach `limit`.
   */
  take(budgetBytes: number, limit: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.byKey.size === 0 || budgetBytes <= 0) return out;
    let budget = budgetBytes;
    const promoted: Broadcast[] = [];
    for (let t = 0; t < this.levels.length && budget > 0; t++) {
      const level = this.levels[t] as Broadcast[];
      if (level.length === 0) continue;
      let changed = false;
      for (let i = level.length - 1; i >= 0 && budget > 0; i--) {
        const item = level[i] as Broadcast;
        if (!item.live || item.transmits >= limit) {
          if (item.live) this.retire(item);
          changed = true;
          continue;
        }
        if (item.bytes.byteLength > budget) continue;
        budget -= item.bytes.byteLength;
        out.push(item.bytes);
        if (item.transmits === 0) this.freshCount--;
        item.transmits++;
        item.onTransmit?.(item.transmits);
        if (item.transmits >= limit) this.retire(item);
        else promoted.push(item);
        changed = true;
      }
      if (changed) this.levels[t] = level.filter((item) => item.live && item.transmits === t);
    }
    // Each level was walked newest first, so promoted items are in descending order per level.
    for (let i = promoted.length - 1; i >= 0; i--) {
      const item = promoted[i] as Broadcast;
      while (this.levels.length <= item.transmits) this.levels.push([]);
      insertInOrder(this.levels[item.transmits] as Broadcast[], item);
    }
    return out;
  }

  private retire(item: Broadcast): void {
    if (!item.live) return;
    item.live = false;
    if (item.transmits === 0) this.freshCount--;
    if (this.byKey.get(item.key) === item) this.byKey.delete(item.key);
  }
}

/** Inserts keeping `level` sorted by enqueue order (almost always an append). */
function insertInOrder(level: Broadcast[], item: Broadcast): void {
  let at = level.length;
  while (at > 0 && (level[at - 1] as Broadcast).order > item.order) at--;
  level.splice(at, 0, item);
}
