/**
 * What the leading master asks the allocator for (pure; time is an input): an address for every
 * named VIP some task declares and the allocator has not given one yet, and the release of
 * every VIP no task has declared for `graceMs`. The grace period keeps a name's address while
 * its tasks are redeployed, so clients holding it (a cached DNS answer, a configuration file)
 * reach the new tasks; released, the address may go to another name.
 *
 * The grace clock runs on the leader only: a new leader starts every absent VIP's clock at its
 * election (a release can come later than graceMs after the last backend left, never sooner).
 */

export interface VipPlan {
  assign: string[];
  release: string[];
}

export class VipAssigner {
  /** VIPs the allocator holds that no task declares, and since when (ms). */
  private readonly absentSince = new Map<string, number>();

  constructor(private readonly graceMs: number) {}

  /** `declared`: named VIPs tasks declare now; `held`: the ones the allocator has addresses for. */
  plan(declared: Iterable<string>, held: Iterable<string>, nowMs: number): VipPlan {
    const wanted = new Set(declared);
    const heldSet = new Set(held);
    const assign = [...wanted].filter((k) => !heldSet.has(k)).sort();
    const release: string[] = [];
    for (const key of [...this.absentSince.keys()]) if (!heldSet.has(key) || wanted.has(key)) this.absentSince.delete(key);
    for (const key of heldSet) {
      if (wanted.has(key)) continue;
      const since = this.absentSince.get(key);
      if (since === undefined) this.absentSince.set(key, nowMs);
      else if (nowMs - since >= this.graceMs) release.push(key);
    }
    return { assign, release: release.sort() };
  }

  /** VIPs waiting out their grace period, with the time each will be released (ms). */
  releasing(): { vip: string; atMs: number }[] {
    return [...this.absentSince].map(([vip, since]) => ({ vip, atMs: since + this.graceMs })).sort((a, b) => (a.vip < b.vip ? -1 : 1));
  }
}
