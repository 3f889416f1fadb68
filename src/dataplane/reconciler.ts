/**
 * The level-triggered reconciler: `setDesired(state)` (or per-group `setDesiredGroup`) then
 * `apply()`. It keeps the desired state, its view of the kernel and a set of dirty keys; an apply
 * plans only the dirty keys (so changing one remote agent among 10,000 costs a few map lookups,
 * not a pass over every entry), sends the operations as batches, and folds each outcome into the
 * view. Any failure marks the view for a resync (list the kernel, replace the view, everything
 * dirty) and schedules a retry with exponential backoff.
 *
 * It resyncs at start, every `resyncIntervalMs`, and when notifications were lost; a notification
 * about an object it owns or wants marks that key dirty and schedules an apply, so a route an
 * operator deletes by hand comes back within milliseconds.
 *
 * What it owns and may change is defined in `plan.ts`; nothing else is ever touched.
 */
import { Backoff, type Clock, type TimerHandle } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { normalizeState, sameEntry, type NormAddress, type NormEntry, type NormLink, type NormState } from './desired.js';
import { DataplaneError, DataplaneErrorCode, type KernelError } from './errors.js';
import { describeOp, type Kernel } from './kernel.js';
import { planAddresses, planEntry, planLinks, type Ownership } from './plan.js';
import { KERNEL_OP_NAMES, type DesiredState, type KernelEvent, type KernelOp, type KernelOpName } from './types.js';
import { KernelView } from './view.js';

/** lashup's route and rule protocol number: 76 ('L'), unused in iproute2's rt_protos. */
export const LASHUP_ROUTE_PROTOCOL = 76;
/** The alias lashup writes on links it creates or adopts. */
export const LASHUP_LINK_ALIAS = 'lashup';

export interface ReconcilerOptions {
  kernel: Kernel;
  clock: Clock;
  logger?: Logger;
  /**
   * Protocol number on lashup's routes and rules; how lashup recognizes its own after a restart.
   * Default 76. Change only with every agent at once: entries under the old number are no longer
   * recognized and stay until deleted by hand.
   */
  routeProtocol?: number;
  /** Alias written on owned links. Default "lashup". */
  ownerAlias?: string;
  /** Told the duration of every apply (the daemon's apply-time histogram). */
  observeApplyMs?: (durationMs: number) => void;
  /**
   * Milliseconds between full resyncs (list everything, compare). Notifications catch almost all
   * drift at once; the periodic resync is the backstop for what the kernel changes without
   * telling (IPv4 routes that vanish with a link). Default 60,000: a listing of 30,000 entries
   * costs about 100 ms of CPU, so once a minute is under 0.2%.
   */
  resyncIntervalMs?: number;
  /** First retry delay after a failed apply, in milliseconds; doubles per consecutive failure. Default 200. */
  retryInitialMs?: number;
  /** Longest retry delay in milliseconds. Default 10,000: a wedged kernel is not hammered. */
  retryMaxMs?: number;
}

export interface OpCounts {
  ok: number;
  failed: number;
}

export interface ReconcilerStats {
  applies: number;
  /** Applies that ended with a failed operation or listing. */
  failedApplies: number;
  lastApplyMs: number;
  maxApplyMs: number;
  totalApplyMs: number;
  ops: Record<KernelOpName, OpCounts>;
  /** Operations that repaired a difference found by a notification or a periodic resync. */
  driftCorrected: number;
  resyncs: number;
  /** Resyncs by cause: start, periodic, failure, notifications lost, link down, ambiguous FDB notification, requested. */
  resyncReasons: Record<string, number>;
  notifications: number;
  /** Notification losses (socket overflows, helper restarts); each forces a resync. */
  notificationLosses: number;
  /** Desired entries blocked by a foreign object in their slot (current). */
  conflicts: number;
  /** Desired entries naming a device lashup does not manage (current). */
  invalid: number;
  /** Desired entries waiting for their device (current). */
  waiting: number;
  /** Desired entries hidden by another group's entry for the same key (current). */
  shadowed: number;
  /** True when the last apply left nothing to do. */
  converged: boolean;
}

export interface ApplyResult {
  /** Operations sent. */
  ops: number;
  failed: number;
  resynced: boolean;
  converged: boolean;
  durationMs: number;
}

type DirtyReason = 'desired' | 'drift';

const fdbId = (f: { ifindex: number; mac: string; dst?: string | undefined }): string => `${f.ifindex}|${f.mac}|${f.dst ?? ''}`;

interface GroupEntry {
  group: string;
  entry: NormEntry;
}

export class Reconciler {
  private readonly kernel: Kernel;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly own: Ownership;
  private readonly resyncIntervalMs: number;
  /** Retries after failed applies: 200 ms doubling to 10 s by default, reset by a clean apply. */
  private readonly retry: Backoff;

  private readonly view = new KernelView();
  private readonly groups = new Map<string, NormState>();
  /** key -> entries wanting it, the first one active. */
  private readonly entries = new Map<string, GroupEntry[]>();
  private desiredLinks = new Map<string, NormLink>();
  private desiredAddresses = new Map<string, NormAddress>();
  private readonly dirty = new Map<string, DirtyReason>();
  private linkDrift = false;
  private readonly conflicts = new Map<string, string>();
  private readonly invalid = new Map<string, string>();
  private shadowed = 0;

  private needResync = true;
  private resyncReason = 'start';
  private initialResyncDone = false;
  private buffering: KernelEvent[] | undefined;
  private current: Promise<ApplyResult> | undefined;
  private again = false;
  private timer: TimerHandle | undefined;
  private timerDueMs = Infinity;
  private resyncTimer: TimerHandle | undefined;
  private unsubscribe: (() => void) | undefined;
  private started = false;
  private stopped = false;
  private readonly counts: ReconcilerStats;
  /**
   * FDB operations awaiting their acknowledgement, as `ifindex|mac|dst`. VXLAN FDB notifications
   * carry no requester port, so the backend cannot drop their echoes; and an echo can overtake
   * its acknowledgement. Seen against the old view, the echo of a moved agent's replace looked
   * like a foreign `fdb append` and forced a full resync (300 ms at 10,000 agents) for a
   * one-operation change. An event matching an operation in flight is that operation's echo.
   */
  private readonly fdbInFlight = new Set<string>();
  private readonly observeApplyMs: ((durationMs: number) => void) | undefined;

  constructor(options: ReconcilerOptions) {
    this.kernel = options.kernel;
    this.observeApplyMs = options.observeApplyMs;
    this.clock = options.clock;
    this.logger = options.logger;
    this.own = { routeProtocol: options.routeProtocol ?? LASHUP_ROUTE_PROTOCOL, ownerAlias: options.ownerAlias ?? LASHUP_LINK_ALIAS };
    this.resyncIntervalMs = options.resyncIntervalMs ?? 60_000;
    this.retry = new Backoff({ initialMs: options.retryInitialMs ?? 200, maxMs: options.retryMaxMs ?? 10_000 });
    if (!Number.isInteger(this.own.routeProtocol) || this.own.routeProtocol < 5 || this.own.routeProtocol > 255) {
      throw new DataplaneError(DataplaneErrorCode.InvalidDesired, `routeProtocol = ${this.own.routeProtocol} is not valid; expected an integer from 5 to 255 (0-4 belong to the kernel)`, {
        routeProtocol: this.own.routeProtocol,
      });
    }
    const ops = {} as Record<KernelOpName, OpCounts>;
    for (const name of KERNEL_OP_NAMES) ops[name] = { ok: 0, failed: 0 };
    this.counts = {
      applies: 0,
      failedApplies: 0,
      lastApplyMs: 0,
      maxApplyMs: 0,
      totalApplyMs: 0,
      ops,
      driftCorrected: 0,
      resyncs: 0,
      resyncReasons: {},
      notifications: 0,
      notificationLosses: 0,
      conflicts: 0,
      invalid: 0,
      waiting: 0,
      shadowed: 0,
      converged: false,
    };
  }

  /** Subscribes to notifications, resyncs and applies, and starts the periodic resync. */
  start(): Promise<ApplyResult> {
    if (!this.started) {
      this.started = true;
      this.unsubscribe = this.kernel.subscribe((event) => this.onEvent(event));
      this.armResync();
    }
    return this.apply();
  }

  /** Stops timers and notifications; waits for a running apply. Kernel state is left as it is. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.resyncTimer?.cancel();
    this.unsubscribe?.();
    if (this.current !== undefined) await this.current.catch(() => undefined);
  }

  /** Replaces the whole desired state. Throws a DataplaneError (and changes nothing) when it is malformed. */
  setDesired(state: Partial<DesiredState>): void {
    const norm = normalizeState(state);
    for (const group of [...this.groups.keys()]) if (group !== '') this.replaceGroup(group, undefined);
    this.replaceGroup('', norm);
  }

  /**
   * Replaces one named part of the desired state (for example one remote agent's entries), or
   * removes it with `undefined`. The desired state is the union of all groups. Cost is
   * proportional to the group, not to the whole state.
   */
  setDesiredGroup(group: string, state: Partial<DesiredState> | undefined): void {
    const norm = state === undefined ? undefined : normalizeState(state, `desired[${JSON.stringify(group)}]`);
    if (norm !== undefined) {
      for (const link of norm.links) {
        for (const [other, s] of this.groups) {
          if (other !== group && s.links.some((l) => l.name === link.name)) {
            throw new DataplaneError(
              DataplaneErrorCode.InvalidDesired,
              `link ${link.name} of group ${JSON.stringify(group)} is already desired by group ${JSON.stringify(other)}; a link belongs to one group`,
              { group, other, link: link.name },
            );
          }
        }
      }
    }
    this.replaceGroup(group, norm);
  }

  /** Runs an apply now (or joins the one running, which then runs once more). */
  apply(): Promise<ApplyResult> {
    if (this.current !== undefined) {
      this.again = true;
      return this.current;
    }
    this.current = this.loop().finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  /** Resolves when no apply is running or scheduled to run now. */
  async idle(): Promise<void> {
    while (this.current !== undefined) await this.current.catch(() => undefined);
  }

  /** Forces a full listing at the next apply. */
  requestResync(reason = 'requested'): void {
    this.markResync(reason);
    this.schedule(0);
  }

  private markResync(reason: string): void {
    if (!this.needResync) this.resyncReason = reason;
    this.needResync = true;
  }

  stats(): ReconcilerStats {
    return { ...this.counts, resyncReasons: { ...this.counts.resyncReasons }, ops: Object.fromEntries(KERNEL_OP_NAMES.map((n) => [n, { ...this.counts.ops[n] }])) as Record<KernelOpName, OpCounts> };
  }

  /**
   * Desired versus programmed, from the reconciler's view of the kernel (as of the last listing
   * plus every acknowledgement and notification since): each desired entry is `programmed`,
   * `drift` (missing or different: the next apply fixes it), `waiting` (its device is not up
   * yet), `conflict` (a foreign object holds the slot) or `invalid`; owned kernel entries nobody
   * wants any more are `stale`. Counts, and up to `limit` keys of each non-programmed class.
   */
  routeReport(limit = 50): { counts: Record<string, number>; keys: Record<string, string[]> } {
    const links = planLinks(this.desiredLinks, this.view, this.own);
    const counts: Record<string, number> = { programmed: 0, drift: 0, waiting: 0, conflict: 0, invalid: 0, stale: 0 };
    const keys: Record<string, string[]> = { drift: [], waiting: [], conflict: [], invalid: [], stale: [] };
    const note = (cls: string, key: string): void => {
      counts[cls] = (counts[cls] ?? 0) + 1;
      const list = keys[cls];
      if (list !== undefined && list.length < limit) list.push(key);
    };
    for (const key of this.entries.keys()) {
      const plan = planEntry(key, this.activeEntry(key), this.desiredLinks, links, this.view, this.own);
      note(plan.outcome === 'ok' ? 'programmed' : plan.outcome === 'ops' ? 'drift' : plan.outcome, key);
    }
    for (const map of [this.view.routes, this.view.neighbours, this.view.fdb, this.view.rules] as ReadonlyMap<string, unknown>[]) {
      for (const key of map.keys()) {
        if (this.entries.has(key)) continue;
        if (planEntry(key, undefined, this.desiredLinks, links, this.view, this.own).outcome === 'ops') note('stale', key);
      }
    }
    return { counts, keys };
  }

  /** Keys whose desired entry is blocked by a foreign object, with the reason. */
  conflictReport(): { key: string; reason: string }[] {
    return [...this.conflicts].map(([key, reason]) => ({ key, reason }));
  }

  private replaceGroup(group: string, norm: NormState | undefined): void {
    const old = this.groups.get(group);
    const next = new Map<string, NormEntry>();
    for (const e of norm?.entries ?? []) next.set(e.key, e);
    for (const e of old?.entries ?? []) {
      const replacement = next.get(e.key);
      if (replacement !== undefined && sameEntry(e, replacement)) {
        next.delete(e.key);
        continue;
      }
      this.removeEntry(group, e.key);
    }
    for (const e of next.values()) this.addEntry(group, e);
    if (norm === undefined) this.groups.delete(group);
    else this.groups.set(group, norm);
    if (old?.links.length || old?.addresses.length || norm?.links.length || norm?.addresses.length) {
      const links = new Map<string, NormLink>();
      const addresses = new Map<string, NormAddress>();
      for (const s of this.groups.values()) {
        for (const l of s.links) links.set(l.name, l);
        for (const a of s.addresses) addresses.set(a.key, a);
      }
      this.desiredLinks = links;
      this.desiredAddresses = addresses;
    }
    this.schedule(0);
  }

  private addEntry(group: string, entry: NormEntry): void {
    const list = this.entries.get(entry.key);
    if (list === undefined) {
      this.entries.set(entry.key, [{ group, entry }]);
      this.dirty.set(entry.key, 'desired');
      return;
    }
    const index = list.findIndex((g) => g.group === group);
    if (index >= 0) {
      list[index] = { group, entry };
      if (index === 0) this.dirty.set(entry.key, 'desired');
      return;
    }
    // Two groups want the same slot (two agents claiming one subnet): the first keeps it.
    list.push({ group, entry });
    this.shadowed++;
    this.logger?.warn({ key: entry.key, group, holder: list[0]?.group }, 'two desired groups want the same kernel entry; the first keeps it');
  }

  private removeEntry(group: string, key: string): void {
    const list = this.entries.get(key);
    if (list === undefined) return;
    const index = list.findIndex((g) => g.group === group);
    if (index < 0) return;
    list.splice(index, 1);
    if (index > 0 || list.length > 0) this.shadowed = Math.max(0, this.shadowed - 1);
    if (list.length === 0) this.entries.delete(key);
    if (index === 0) this.dirty.set(key, 'desired');
  }

  private activeEntry(key: string): NormEntry | undefined {
    return this.entries.get(key)?.[0]?.entry;
  }

  private schedule(delayMs: number): void {
    if (!this.started || this.stopped) return;
    const due = this.clock.nowMs() + delayMs;
    if (this.timer !== undefined && this.timerDueMs <= due) return;
    this.timer?.cancel();
    this.timerDueMs = due;
    this.timer = this.clock.setTimer(delayMs, () => {
      this.timer = undefined;
      this.timerDueMs = Infinity;
      void this.apply();
    });
  }

  private armResync(): void {
    this.resyncTimer = this.clock.setTimer(this.resyncIntervalMs, () => {
      if (this.stopped) return;
      this.markResync('periodic');
      this.armResync();
      void this.apply();
    });
  }

  /** Runs passes while more work arrives; the result covers all of them. */
  private async loop(): Promise<ApplyResult> {
    const total: ApplyResult = { ops: 0, failed: 0, resynced: false, converged: false, durationMs: 0 };
    let result: ApplyResult;
    do {
      this.again = false;
      result = await this.runOnce();
      total.ops += result.ops;
      total.failed += result.failed;
      total.resynced ||= result.resynced;
      total.durationMs += result.durationMs;
    } while (this.again && !this.stopped && result.failed === 0);
    total.converged = result.converged;
    return total;
  }

  private async runOnce(): Promise<ApplyResult> {
    const startMs = this.clock.nowMs();
    let resynced = false;
    let sent = 0;
    let failed = 0;
    if (this.needResync) {
      try {
        await this.resync();
        resynced = true;
      } catch (err) {
        this.logger?.warn({ err }, 'kernel listing failed; retrying');
        return this.finish(startMs, 0, 1, false);
      }
    }
    for (let round = 0; round < 8; round++) {
      const links = planLinks(this.desiredLinks, this.view, this.own);
      this.noteLinkConflicts(links.conflicts);
      if (links.structural.length > 0) {
        const r = await this.execute(links.structural, this.linkDrift ? 'drift' : 'desired');
        sent += r.sent;
        failed += r.failed;
        if (r.failed > 0) break;
        try {
          for (const key of this.view.setLinks(await this.kernel.listLinks())) this.dirty.set(key, 'desired');
        } catch (err) {
          this.logger?.warn({ err }, 'link listing failed');
          failed++;
          break;
        }
        continue;
      }
      const addresses = planAddresses(this.desiredAddresses, this.desiredLinks, links, this.view);
      const batch = [...links.updates, ...addresses.ops];
      if (batch.length > 0) {
        const r = await this.execute(batch, this.linkDrift ? 'drift' : 'desired');
        sent += r.sent;
        failed += r.failed;
        if (r.failed > 0) break;
        continue;
      }
      this.linkDrift = false;
      const r = await this.entriesRound(links);
      sent += r.sent;
      failed += r.failed;
      break;
    }
    return this.finish(startMs, sent, failed, resynced);
  }

  private async resync(): Promise<void> {
    this.buffering = [];
    try {
      const snapshot = await this.kernel.snapshot();
      this.view.load(snapshot);
    } catch (err) {
      this.buffering = undefined;
      throw err;
    }
    const buffered = this.buffering;
    this.buffering = undefined;
    // Changes announced while the listing ran may or may not be in it; replaying them in order
    // leaves each key as its newest announcement says.
    for (const event of buffered) this.view.applyEvent(event);
    const reason: DirtyReason = this.initialResyncDone ? 'drift' : 'desired';
    this.initialResyncDone = true;
    this.needResync = false;
    this.counts.resyncs++;
    this.counts.resyncReasons[this.resyncReason] = (this.counts.resyncReasons[this.resyncReason] ?? 0) + 1;
    for (const key of this.entries.keys()) this.dirty.set(key, reason);
    for (const key of this.view.routes.keys()) if (!this.dirty.has(key)) this.dirty.set(key, reason);
    for (const key of this.view.neighbours.keys()) if (!this.dirty.has(key)) this.dirty.set(key, reason);
    for (const key of this.view.fdb.keys()) if (!this.dirty.has(key)) this.dirty.set(key, reason);
    for (const key of this.view.rules.keys()) if (!this.dirty.has(key)) this.dirty.set(key, reason);
    this.linkDrift = reason === 'drift';
  }

  private async entriesRound(links: ReturnType<typeof planLinks>): Promise<{ sent: number; failed: number }> {
    const replaces: KernelOp[] = [];
    const deletes: KernelOp[] = [];
    const replaceKeys: string[] = [];
    const deleteKeys: string[] = [];
    let waiting = 0;
    for (const [key] of this.dirty) {
      const plan = planEntry(key, this.activeEntry(key), this.desiredLinks, links, this.view, this.own);
      if (plan.outcome === 'waiting') {
        waiting++;
        continue;
      }
      if (plan.outcome === 'conflict' || plan.outcome === 'invalid') {
        const map = plan.outcome === 'conflict' ? this.conflicts : this.invalid;
        if (map.get(key) !== plan.reason)
          this.logger?.warn(
            { key, reason: plan.reason },
            plan.outcome === 'conflict' ? 'desired entry blocked by a foreign kernel object; leaving it alone' : 'desired entry names a device lashup does not manage',
          );
        map.set(key, plan.reason as string);
        this.dirty.delete(key);
        continue;
      }
      this.conflicts.delete(key);
      this.invalid.delete(key);
      if (plan.outcome === 'ok') {
        this.dirty.delete(key);
        continue;
      }
      for (const op of plan.replaces) {
        replaces.push(op);
        replaceKeys.push(key);
      }
      for (const op of plan.deletes) {
        deletes.push(op);
        deleteKeys.push(key);
      }
    }
    this.counts.waiting = waiting;
    this.counts.conflicts = this.conflicts.size;
    this.counts.invalid = this.invalid.size;
    if (replaces.length + deletes.length === 0) return { sent: 0, failed: 0 };
    const ops = [...replaces, ...deletes];
    const keys = [...replaceKeys, ...deleteKeys];
    // Take the keys out of the dirty set before sending: a key marked again while the operations
    // are in flight (a new desired value, a notification) must stay dirty for the next pass.
    // (Deleting them after the await lost such marks: a desired change made during a large
    // apply was silently dropped until the next resync.)
    const reasons = new Map<string, DirtyReason>();
    for (const key of keys) {
      if (!reasons.has(key)) reasons.set(key, this.dirty.get(key) ?? 'desired');
      this.dirty.delete(key);
    }
    const results = await this.runOps(ops);
    let failed = 0;
    results.forEach((err, i) => {
      const key = keys[i] as string;
      const reason = reasons.get(key) as DirtyReason;
      if (err !== undefined) {
        failed++;
        if (!this.dirty.has(key)) this.dirty.set(key, reason);
      } else if (reason === 'drift') {
        this.counts.driftCorrected++;
      }
    });
    return { sent: ops.length, failed };
  }

  private async execute(ops: KernelOp[], reason: DirtyReason): Promise<{ sent: number; failed: number }> {
    const results = await this.runOps(ops);
    const failed = results.filter((r) => r !== undefined).length;
    if (reason === 'drift') this.counts.driftCorrected += ops.length - failed;
    return { sent: ops.length, failed };
  }

  /** Sends operations, counts them, folds the accepted ones into the view. */
  private async runOps(ops: KernelOp[]): Promise<(KernelError | undefined)[]> {
    let results: (KernelError | undefined)[];
    const fdbIds: string[] = [];
    for (const op of ops) {
      if (op.op === 'fdb.replace' || op.op === 'fdb.delete') {
        const id = fdbId(op.fdb);
        fdbIds.push(id);
        this.fdbInFlight.add(id);
      }
    }
    try {
      results = await this.kernel.execute(ops);
    } catch (err) {
      this.logger?.warn({ err }, 'kernel unreachable');
      results = ops.map(() => err as KernelError);
    } finally {
      for (const id of fdbIds) this.fdbInFlight.delete(id);
    }
    results.forEach((err, i) => {
      const op = ops[i] as KernelOp;
      const counts = this.counts.ops[op.op];
      if (err === undefined) {
        counts.ok++;
        for (const key of this.view.applyOp(op)) this.dirty.set(key, 'desired');
      } else {
        counts.failed++;
        this.logger?.warn({ op: describeOp(op), errno: err.errno ?? err.code, err: err.message }, 'kernel operation failed; resync scheduled');
      }
    });
    return results;
  }

  private finish(startMs: number, sent: number, failed: number, resynced: boolean): ApplyResult {
    const durationMs = this.clock.nowMs() - startMs;
    this.counts.applies++;
    this.counts.lastApplyMs = durationMs;
    this.counts.totalApplyMs += durationMs;
    this.counts.maxApplyMs = Math.max(this.counts.maxApplyMs, durationMs);
    this.observeApplyMs?.(durationMs);
    this.counts.shadowed = this.shadowed;
    if (failed > 0) {
      this.counts.failedApplies++;
      this.markResync('failure');
      this.schedule(this.retry.next());
    } else {
      this.retry.reset();
    }
    const converged = failed === 0 && this.dirty.size === 0;
    this.counts.converged = converged;
    return { ops: sent, failed, resynced, converged, durationMs };
  }

  private noteLinkConflicts(conflicts: readonly { key: string; reason: string }[]): void {
    for (const c of conflicts) {
      if (this.conflicts.get(c.key) !== c.reason) this.logger?.warn({ link: c.key, reason: c.reason }, 'desired link blocked by a foreign device; leaving it alone');
      this.conflicts.set(c.key, c.reason);
    }
    for (const key of [...this.conflicts.keys()]) {
      if (this.desiredLinks.has(key) && !conflicts.some((c) => c.key === key)) this.conflicts.delete(key);
    }
  }

  private onEvent(event: KernelEvent): void {
    if (this.stopped) return;
    this.counts.notifications++;
    if (event.type === 'overflow') {
      this.counts.notificationLosses++;
      this.logger?.warn({ reason: event.reason }, 'kernel notifications were lost; resyncing');
      this.requestResync('notifications lost');
      return;
    }
    if (event.type === 'fdb' && this.fdbInFlight.has(fdbId(event.fdb))) return;
    if (this.buffering !== undefined) {
      this.buffering.push(event);
      return;
    }
    const change = this.view.applyEvent(event);
    let relevant = false;
    if (event.type === 'link') {
      const link = change.link;
      if (link !== undefined && (this.desiredLinks.has(link.name) || link.alias === this.own.ownerAlias)) {
        relevant = true;
        this.linkDrift = true;
        // IPv4 drops a downed link's routes without a word: only a listing shows what is left.
        if (!change.linkRemoved && !link.up) this.markResync('link down');
      }
      for (const key of change.keys) this.dirty.set(key, 'drift');
      relevant ||= change.keys.length > 0;
    } else if (event.type === 'addr') {
      if (change.keys.length > 0 && this.desiredLinks.has(this.view.nameOf(event.addr.ifindex))) {
        this.linkDrift = true;
        relevant = true;
      }
    } else {
      if (change.uncertain === true && this.ownedEvent(event)) this.markResync('ambiguous FDB notification');
      for (const key of change.keys) {
        if (this.entries.has(key) || this.ownedEvent(event)) {
          this.dirty.set(key, 'drift');
          relevant = true;
        }
      }
    }
    if (relevant) this.schedule(0);
  }

  private ownedEvent(event: KernelEvent): boolean {
    switch (event.type) {
      case 'route':
        return event.route.protocol === this.own.routeProtocol;
      case 'rule':
        return event.rule.protocol === this.own.routeProtocol;
      case 'neigh':
        return event.neigh.permanent && this.view.linksByIndex.get(event.neigh.ifindex)?.alias === this.own.ownerAlias;
      case 'fdb':
        return event.fdb.permanent && this.view.linksByIndex.get(event.fdb.ifindex)?.alias === this.own.ownerAlias;
      default:
        return false;
    }
  }
}
