/**
 * Keeps lashup's nftables tables equal to the desired ruleset, level-triggered like the
 * dataplane's reconciler: the desired ruleset is applied as one atomic replace of lashup's
 * tables; every `resyncIntervalMs` the tables are listed and compared with the listing taken
 * right after the last apply, and anything else (an `nft flush ruleset`, a hand edit, another
 * tool replacing the ruleset) is counted as drift and replaced. A failed apply is retried with
 * backoff. Before this, the masquerade was applied once at start from the local file: never
 * re-applied when the masters published another overlay, never restored after a flush, never
 * removed on leave.
 */
import { Backoff, SerialRunner, type Clock, type TimerHandle } from '../common/index.js';
import type { Logger } from '../log/index.js';
import type { FirewallBackend } from './backend.js';
import { applyScript, removeScript, type DropCounter, type FirewallFamily, type FirewallRuleset } from './ruleset.js';

export interface FirewallSyncerOptions {
  backend: FirewallBackend;
  clock: Clock;
  /** Time between listings that catch drift, ms. */
  resyncIntervalMs: number;
  /** First retry after a failed apply, ms (doubling up to `resyncIntervalMs`). Default 1,000. */
  retryMinMs?: number;
  logger?: Logger;
}

export interface FirewallSyncerStats {
  /** Scripts applied (changes, drift repairs, retries). */
  applies: number;
  applyFailures: number;
  /** Listings that found lashup's tables as last applied. */
  resyncs: number;
  /** Listings that found them changed by someone else (then re-applied). */
  drift: number;
  removals: number;
  /** The desired ruleset is what the kernel holds (as of the last apply or listing). */
  converged: boolean;
  /**
   * New connections dropped by the isolation rules, in packets, by source (a network, or
   * `hosts`) and destination (a network, or `outside`), as of the last reading (every resync
   * and every `readCounters`). A replace of the tables (a policy change) starts them at 0.
   */
  dropped: Record<string, Record<string, number>>;
}

type Listing = Record<FirewallFamily, string | undefined>;

const sameListing = (a: Listing, b: Listing): boolean => a.ip === b.ip && a.ip6 === b.ip6;

export class FirewallSyncer {
  readonly stats: FirewallSyncerStats = { applies: 0, applyFailures: 0, resyncs: 0, drift: 0, removals: 0, converged: false, dropped: {} };
  private desired: string | undefined;
  private counters: DropCounter[] = [];
  /** The script the kernel holds, and its listing right after it was applied. */
  private applied: { script: string; listing: Listing } | undefined;
  private timer: TimerHandle | undefined;
  private readonly runner = new SerialRunner(
    () => this.sync(),
    () => this.started,
  );
  private started = false;
  /** Retries after failed applies: retryMinMs doubling up to the resync interval. */
  private readonly retry: Backoff;

  constructor(private readonly options: FirewallSyncerOptions) {
    this.retry = new Backoff({ initialMs: options.retryMinMs ?? 1000, maxMs: Math.max(options.retryMinMs ?? 1000, options.resyncIntervalMs) });
  }

  /** The `nft -f` script of the ruleset to hold (undefined before the first `setDesired`). */
  get desiredScript(): string | undefined {
    return this.desired;
  }

  /** Sets the ruleset to hold; applied at once when it differs (after `start`). */
  setDesired(ruleset: FirewallRuleset): void {
    const script = applyScript(ruleset);
    this.counters = ruleset.counters;
    if (script === this.desired) return;
    this.desired = script;
    this.stats.converged = false;
    if (this.started) this.kick();
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.kick();
  }

  /** Stops syncing; the tables stay (a restart adopts them). Resolves when no apply is running. */
  async stop(): Promise<void> {
    this.started = false;
    this.timer?.cancel();
    this.timer = undefined;
    await this.runner.idle();
  }

  /** Stops syncing and removes lashup's tables (leaving the cluster). */
  async remove(): Promise<void> {
    await this.stop();
    await this.options.backend.apply(removeScript());
    this.applied = undefined;
    this.stats.removals++;
    this.stats.converged = false;
  }

  /** Runs a sync now, or once more after the one running. */
  private kick(): void {
    this.runner.kick();
  }

  private async sync(): Promise<void> {
    const script = this.desired;
    if (script === undefined || !this.started) return;
    this.timer?.cancel();
    this.timer = undefined;
    const { backend, logger } = this.options;
    try {
      if (this.applied?.script === script) {
        const now = await backend.read();
        if (sameListing(now.listing, this.applied.listing)) {
          this.stats.resyncs++;
          this.stats.converged = true;
          this.stats.dropped = this.droppedFrom(now.counters);
          this.schedule(this.options.resyncIntervalMs);
          return;
        }
        this.stats.drift++;
        logger?.warn('lashup nftables tables were changed outside lashup; putting them back');
      }
      await backend.apply(script);
      this.stats.applies++;
      this.applied = { script, listing: await backend.list() };
      this.stats.converged = this.desired === script;
      this.retry.reset();
      this.schedule(this.options.resyncIntervalMs);
    } catch (err) {
      this.applied = undefined;
      this.stats.applyFailures++;
      this.stats.converged = false;
      logger?.error(
        { err: err instanceof Error ? err.message : String(err), retryInMs: this.retry.currentMs },
        'nftables rules could not be applied; isolation between overlay networks and the masquerade may not be in force',
      );
      this.schedule(this.retry.next());
    }
  }

  /** Reads the drop counters now (the policy API does; every resync does too). */
  async readCounters(): Promise<FirewallSyncerStats['dropped']> {
    const dropped = this.droppedFrom(await this.options.backend.counters());
    this.stats.dropped = dropped;
    return dropped;
  }

  private droppedFrom(values: Record<string, number>): FirewallSyncerStats['dropped'] {
    const dropped: FirewallSyncerStats['dropped'] = {};
    for (const c of this.counters) {
      const row = dropped[c.from] ?? {};
      row[c.to] = values[c.name] ?? 0;
      dropped[c.from] = row;
    }
    return dropped;
  }

  private schedule(delayMs: number): void {
    if (!this.started) return;
    this.timer?.cancel();
    this.timer = this.options.clock.setTimer(delayMs, () => {
      this.timer = undefined;
      this.kick();
    });
  }
}
