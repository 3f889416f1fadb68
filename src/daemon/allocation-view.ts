/**
 * An agent's copy of the masters' allocations, against which it checks every other agent's
 * overlay entry before programming it (see routes/trust.ts). Fetched from the Raft leader at
 * start, every refresh interval, and soon after an entry it cannot vouch for appears (a new agent,
 * or a forgery: at most one fetch per `minRefreshMs`); kept on disk, so a restarted agent keeps
 * routing to the agents it knew while no master answers.
 */
import type { Clock, TimerHandle } from '../common/index.js';
import { jsonEquals } from '../common/index.js';
import type { Lease } from '../ipam/index.js';
import type { Logger } from '../log/index.js';
import type { EntryAuthority } from '../routes/index.js';
import { writeFileAtomic, type StorageFs } from '../storage/index.js';

export interface AllocationViewOptions {
  /** File of the last fetched allocations (JSON). */
  path: string;
  fs: StorageFs;
  clock: Clock;
  /** Asks the masters for every allocation. */
  fetch: (callback: (leases: Lease[] | undefined, error?: string) => void) => void;
  /** The underlay address membership knows for an agent. */
  underlay: (agent: string) => string | undefined;
  /** Periodic refresh, ms. */
  refreshIntervalMs: number;
  /** Fewest ms between two fetches asked for by unknown entries. */
  minRefreshMs: number;
  logger?: Logger;
}

export interface AllocationViewStats {
  refreshes: number;
  refreshFailures: number;
  /** Allocations known now. */
  allocations: number;
}

export class AllocationView implements EntryAuthority {
  readonly stats: AllocationViewStats = { refreshes: 0, refreshFailures: 0, allocations: 0 };
  private leases = new Map<string, Lease>();
  private readonly listeners = new Set<() => void>();
  private periodic: TimerHandle | undefined;
  private soon: TimerHandle | undefined;
  private inFlight = false;
  private lastFetchMs = -Infinity;
  private stopped = false;

  constructor(private readonly options: AllocationViewOptions) {
    const bytes = options.fs.read(options.path);
    if (bytes === undefined) return;
    try {
      const saved = JSON.parse(new TextDecoder().decode(bytes)) as { leases?: Lease[] };
      this.replace(saved.leases ?? []);
    } catch (err) {
      options.logger?.warn({ path: options.path, err: (err as Error).message }, 'saved allocations unreadable; fetching them again');
    }
  }

  allocation(agent: string): Lease | undefined {
    return this.leases.get(agent);
  }

  underlay(agent: string): string | undefined {
    return this.options.underlay(agent);
  }

  /** Calls `listener` after every change of the allocations. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    const tick = (): void => {
      this.fetchNow();
      this.periodic = this.options.clock.setTimer(this.options.refreshIntervalMs, tick);
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    this.periodic?.cancel();
    this.soon?.cancel();
  }

  /** An entry could not be vouched for: fetch again soon (at most once per minRefreshMs). */
  refresh(): void {
    if (this.stopped || this.soon !== undefined || this.inFlight) return;
    const wait = Math.max(0, this.lastFetchMs + this.options.minRefreshMs - this.options.clock.nowMs());
    this.soon = this.options.clock.setTimer(wait, () => {
      this.soon = undefined;
      this.fetchNow();
    });
  }

  private fetchNow(): void {
    if (this.stopped || this.inFlight) return;
    this.inFlight = true;
    this.lastFetchMs = this.options.clock.nowMs();
    this.options.fetch((leases, error) => {
      this.inFlight = false;
      if (this.stopped) return;
      if (leases === undefined) {
        this.stats.refreshFailures++;
        this.options.logger?.debug({ err: error }, 'allocations not refreshed; keeping the last known');
        return;
      }
      this.stats.refreshes++;
      if (!this.replace(leases)) return;
      try {
        writeFileAtomic(this.options.fs, this.options.path, `${JSON.stringify({ version: 1, leases }, null, 1)}\n`, { mode: 0o600 });
      } catch (err) {
        this.options.logger?.warn({ err: (err as Error).message }, 'allocations could not be saved; a restart without masters will not know them');
      }
      for (const listener of this.listeners) listener();
    });
  }

  /** Replaces the allocations; returns whether they changed. */
  private replace(leases: readonly Lease[]): boolean {
    const next = new Map<string, Lease>();
    for (const lease of leases) if (lease !== null && typeof lease === 'object' && typeof lease.agent === 'string') next.set(lease.agent, lease);
    const same = next.size === this.leases.size && [...next].every(([agent, lease]) => jsonEquals(lease, this.leases.get(agent)));
    this.leases = next;
    this.stats.allocations = next.size;
    return !same;
  }
}
