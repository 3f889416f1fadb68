/**
 * Keeps the kernel's VIP tables equal to the desired VIPs (level-triggered, like the firewall
 * syncer): the first apply, and any apply after a failure or after drift, replaces the tables
 * whole in one transaction; after that each change is one transaction touching only the VIPs
 * that changed (`vipUpdateScript`), so a backend coming or going on one VIP leaves every other
 * VIP's chains and counters as they are, and a large cluster's many VIPs are not rewritten for
 * each change. Every `resyncIntervalMs` the tables are listed: anything else than the listing
 * taken after the last apply (an `nft flush ruleset`, a hand edit) is drift, counted and
 * replaced whole. The same listing gives the per-backend connection counters.
 */
import { Backoff, SerialRunner, type Clock, type TimerHandle } from '../common/index.js';
import { normalizeListing } from '../firewall/index.js';
import type { Logger } from '../log/index.js';
import { parseVipCounters, vipRuleset, vipUpdateScript, type VipRuleset, type VipService } from './ruleset.js';

/** How the syncer reaches nftables (NftCli with `table: VIP_TABLE` in the daemon). */
export interface VipNft {
  /** Runs `script` as one transaction. */
  apply(script: string): Promise<void>;
  /** The VIP tables as nft lists them, counters included; undefined for a family without one. */
  listRaw(): Promise<Record<'ip' | 'ip6', string | undefined>>;
  /**
   * Runs an update script (one command per line, no blocks) as one transaction, where that is
   * cheaper than `apply` (a running `nft -i`); absent: updates go through `apply`.
   */
  update?(script: string): Promise<void>;
  /** Lets go of what it holds (a running `nft -i`); called when the daemon stops. */
  close?(): void;
}

export interface VipSyncerOptions {
  nft: VipNft;
  clock: Clock;
  /** Time between listings that catch drift and read counters, ms. */
  resyncIntervalMs: number;
  /** First retry after a failed apply, ms (doubling up to `resyncIntervalMs`). Default 1,000. */
  retryMinMs?: number;
  /**
   * How long after an apply the tables are listed to take the baseline that later listings are
   * compared with, ms. Default 1,000: a burst of changes (an agent failing takes its backends
   * out of many VIPs; a deploy adds many) is one listing, not one per change, and the listing
   * stays off the path of the next change.
   */
  baselineDelayMs?: number;
  logger?: Logger;
  /** Called after each successful apply with what the kernel now holds. */
  onApplied?: (ruleset: VipRuleset) => void;
}

export interface VipSyncerStats {
  /** Transactions applied: whole replaces and incremental updates. */
  fullApplies: number;
  incrementalApplies: number;
  applyFailures: number;
  /** Listings that found the tables as last applied, and ones that found them changed by someone else. */
  resyncs: number;
  drift: number;
  /** The desired VIPs are what the kernel holds (as of the last apply or listing). */
  converged: boolean;
}

type Listing = Record<'ip' | 'ip6', string | undefined>;

const normalized = (raw: Listing): string => `${normalizeListing(raw.ip ?? '')}\n--\n${normalizeListing(raw.ip6 ?? '')}`;

export class VipSyncer {
  readonly stats: VipSyncerStats = { fullApplies: 0, incrementalApplies: 0, applyFailures: 0, resyncs: 0, drift: 0, converged: false };
  /** New connections per backend chain, as of the last listing. */
  counters: Record<string, number> = {};
  private desired: VipRuleset | undefined;
  /** When the desired VIPs last changed (for the debug log of how long an apply waited). */
  private desiredAtMs = 0;
  /** What the kernel holds, and its listing (undefined until the baseline is taken after an apply). */
  private applied: { ruleset: VipRuleset; listing: string | undefined } | undefined;
  /** The next listing (baseline or resync). */
  private timer: TimerHandle | undefined;
  /** The next try after a failed apply. */
  private retryTimer: TimerHandle | undefined;
  private readonly runner = new SerialRunner(
    () => this.sync(),
    () => this.started,
  );
  private checking: Promise<void> | undefined;
  /** Bumped by every apply (and every loss of what is applied): a listing started before is stale. */
  private version = 0;
  private started = false;
  private readonly retry: Backoff;

  constructor(private readonly options: VipSyncerOptions) {
    this.retry = new Backoff({ initialMs: options.retryMinMs ?? 1000, maxMs: Math.max(options.retryMinMs ?? 1000, options.resyncIntervalMs) });
  }

  /** The ruleset the kernel holds (undefined before the first apply or after a failed one). */
  get current(): VipRuleset | undefined {
    return this.applied?.ruleset;
  }

  /** Sets the VIPs to hold; applied at once when they differ (after `start`). True when they differ. */
  setDesired(services: readonly VipService[], hairpinSubnets: readonly string[]): boolean {
    const next = vipRuleset(services, { hairpinSubnets });
    if (next.script === this.desired?.script) return false;
    this.desired = next;
    this.desiredAtMs = this.options.clock.nowMs();
    this.stats.converged = false;
    if (this.started) this.kick();
    return true;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.kick();
  }

  /** Stops syncing; the tables stay (a restart adopts them by replacing them). */
  async stop(): Promise<void> {
    this.started = false;
    this.timer?.cancel();
    this.timer = undefined;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    await this.runner.idle();
    await this.checking;
  }

  /** Stops syncing and removes the VIP tables (leaving the cluster). */
  async remove(): Promise<void> {
    await this.stop();
    await this.options.nft.apply(vipRuleset([]).script);
    this.applied = undefined;
    this.stats.converged = false;
  }

  /** Lists the tables now: counters fresh, drift caught (waits for a listing already running). */
  async resync(): Promise<void> {
    await this.runner.idle();
    await this.check();
  }

  /** Runs an apply now, or once more after the one running. */
  private kick(): void {
    this.runner.kick();
  }

  /** Brings the kernel to the desired VIPs: a whole replace, or an update of what changed. */
  private async sync(): Promise<void> {
    const desired = this.desired;
    if (desired === undefined || !this.started) return;
    if (this.applied?.ruleset.script === desired.script) return;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    const { nft, logger } = this.options;
    const script = this.applied === undefined ? undefined : vipUpdateScript(this.applied.ruleset, desired);
    try {
      const startedMs = this.options.clock.nowMs();
      if (script === undefined) {
        await nft.apply(desired.script);
        this.stats.fullApplies++;
      } else if (script !== '') {
        await (nft.update === undefined ? nft.apply(script) : nft.update(script));
        this.stats.incrementalApplies++;
      }
      this.applied = { ruleset: desired, listing: undefined };
      this.version++;
      this.stats.converged = this.desired === desired;
      this.retry.reset();
      logger?.debug({ whole: script === undefined, waitedMs: startedMs - this.desiredAtMs, applyMs: this.options.clock.nowMs() - startedMs }, 'VIP rules applied');
      this.options.onApplied?.(desired);
      this.scheduleCheck(this.options.baselineDelayMs ?? 1000);
    } catch (err) {
      // The next try replaces the tables whole: what a failed transaction left is not known.
      this.applied = undefined;
      this.version++;
      this.stats.applyFailures++;
      this.stats.converged = false;
      logger?.error({ code: 'LASHUP_ERR_FIREWALL_APPLY', err: err instanceof Error ? err.message : String(err), retryInMs: this.retry.currentMs }, 'VIP rules could not be applied; retrying');
      if (!this.started) return;
      this.retryTimer = this.options.clock.setTimer(this.retry.next(), () => {
        this.retryTimer = undefined;
        this.kick();
      });
    }
  }

  /**
   * Lists the tables (the baseline after an apply, then every resync): counters, and drift.
   * It is never awaited by an apply (when every agent listed right after the same change, an
   * update arriving then waited for two spawned nft runs under that load, up to a second in
   * `bench vips`; in the daemon both now go through one `nft -i`, where an update waits at most
   * for one listing, about a millisecond for a few VIPs); a listing that an apply overtook
   * proves nothing and is taken again.
   */
  private check(): Promise<void> {
    this.checking ??= (async () => {
      const applied = this.applied;
      const version = this.version;
      if (applied === undefined || !this.started) return;
      let raw: Record<'ip' | 'ip6', string | undefined>;
      try {
        raw = await this.options.nft.listRaw();
      } catch (err) {
        this.options.logger?.debug({ err: err instanceof Error ? err.message : String(err) }, 'VIP tables not listed');
        this.scheduleCheck(this.options.resyncIntervalMs);
        return;
      }
      this.counters = { ...parseVipCounters(raw.ip ?? ''), ...parseVipCounters(raw.ip6 ?? '') };
      if (this.version !== version || this.applied !== applied) {
        this.scheduleCheck(this.options.baselineDelayMs ?? 1000);
        return;
      }
      // The first listing after an apply is the baseline. A hand edit made between the apply
      // and this listing would be taken into it and go unnoticed until the next change: the
      // price of keeping listings off the path of every change.
      applied.listing ??= normalized(raw);
      if (normalized(raw) === applied.listing) {
        this.stats.resyncs++;
        this.stats.converged = this.desired === applied.ruleset;
        this.scheduleCheck(this.options.resyncIntervalMs);
        return;
      }
      this.stats.drift++;
      this.options.logger?.warn('lashup VIP tables were changed outside lashup; putting them back');
      this.applied = undefined;
      this.version++;
      this.stats.converged = false;
      this.kick();
    })().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private scheduleCheck(delayMs: number): void {
    if (!this.started) return;
    this.timer?.cancel();
    this.timer = this.options.clock.setTimer(delayMs, () => {
      this.timer = undefined;
      void this.check();
    });
  }
}
