/**
 * An agent's copy of the masters' allocations, against which it checks every other agent's
 * overlay entry before programming it (see routes/trust.ts). The whole list is fetched from a
 * master at start and every refresh interval; an entry it cannot vouch for (a new agent, a
 * changed allocation, or a forgery) has its agent's allocation peeked at (a few hundred bytes;
 * at most PEEK_LIMIT names per round, one round per `minRefreshMs`, more names make it a whole
 * fetch; a name the masters do not hold yet is asked again a few times, backing off). Peeks keep a mass
 * join linear per agent: fetching the whole list on every new entry cost each agent up to 100 KB
 * per second with a thousand agents. Kept on disk, so a restarted agent keeps routing to the
 * agents it knew while no master answers.
 *
 * Announcements (keyspace/allocations.ts): the master that grants a lease announces it through
 * the store, signed; `announced` takes one whose signature checks as if a master had answered a
 * peek, so a new agent's entry is usually vouched for the moment it arrives, without a round
 * trip. A fetch or peek that was asked before an announcement arrived and lacks it does not undo
 * it (the master asked had not applied it yet).
 */
import type { Clock, TimerHandle } from '../common/index.js';
import { jsonEquals } from '../common/index.js';
import { leaseBlocks, type Lease } from '../ipam/index.js';
import type { Logger } from '../log/index.js';
import { checkAnnouncement, rowSignature, rowSignatureProblem, type AnnouncementTrust, type RowOwnership, type RowVerifier } from '../keyspace/index.js';
import { overlayKey, type EntryAuthority } from '../routes/index.js';
import { writeFileAtomic, type StorageFs } from '../storage/index.js';

export interface AllocationViewOptions {
  /** File of the last fetched allocations (JSON). */
  path: string;
  fs: StorageFs;
  clock: Clock;
  /** Asks the masters for every allocation. */
  fetch: (callback: (leases: Lease[] | undefined, error?: string) => void) => void;
  /** Asks the masters for one agent's allocation (null: they hold none). */
  peek: (agent: string, callback: (lease: Lease | null | undefined, error?: string) => void) => void;
  /** The underlay address membership knows for an agent. */
  underlay: (agent: string) => string | undefined;
  /** Periodic refresh, ms. */
  refreshIntervalMs: number;
  /** Fewest ms between two fetches asked for by unknown entries. */
  minRefreshMs: number;
  /** Checks agents' row signatures against their pinned identities; absent: not checked. */
  verifier?: RowVerifier;
  /** Checks the masters' signed announcements; absent: announcements are not taken (peeks only). */
  announcements?: AnnouncementTrust;
  /**
   * Oldest announcement taken, by its signature's time against this node's wall clock, in ms.
   * Default 60,000: announcements only save the ask when an agent joins, and an old one is
   * what a member would replay to get back addresses the masters have since released and
   * given to another agent (the masters' fetch and peeks still cover everything).
   */
  announcementMaxAgeMs?: number;
  /**
   * Delay before the allocations are written to disk after a change, in ms; changes within it
   * are written once. Default 1,000: the file is only read at a restart without masters, and
   * a blocking write per change (20-50 ms with fsync on a busy disk) held back the routes of
   * every join.
   */
  saveDelayMs?: number;
  logger?: Logger;
}

/** An allocation taken from a recent announcement (AllocationView.recentlyAnnounced). */
export interface RecentAnnouncement {
  lease: Lease;
  /** When the announcement arrived, ms on the view's clock. */
  announcedAtMs: number;
  /** The agent's underlay address as the granting master's membership knew it, if it did. */
  underlayIp?: string;
}

/**
 * The stable code of an announcement whose underlay address is not an IP address: the address
 * is left out (logged, counted), the allocation taken.
 */
export const ANNOUNCEMENT_UNDERLAY_INVALID = 'LASHUP_ERR_ALLOCATION_ANNOUNCEMENT_UNDERLAY_INVALID';

/** The stable code of a malformed allocation from a master (logged, counted, dropped). */
export const ALLOCATION_INVALID = 'LASHUP_ERR_ALLOCATION_INVALID';

/** The stable code of an allocation announcement that is not taken (logged, counted, left out). */
export const ANNOUNCEMENT_REFUSED = 'LASHUP_ERR_ALLOCATION_ANNOUNCEMENT_REFUSED';

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;

/**
 * Whether a value from the wire has the shape the trust check reads (agent, VTEP addresses,
 * MAC, an object of networks whose blocks are strings): a malformed one from a buggy or
 * hostile master would otherwise throw inside the overlay agent's recomputation.
 */
function isLease(v: unknown): v is Lease {
  if (v === null || typeof v !== 'object') return false;
  const l = v as Record<string, unknown>;
  if (!isText(l['agent']) || !isText(l['vtepIp']) || !isText(l['vtepMac']) || (l['vtepIp6'] !== undefined && !isText(l['vtepIp6'])) || (l['peerId'] !== undefined && !isText(l['peerId'])))
    return false;
  const networks = l['networks'];
  if (networks === null || typeof networks !== 'object' || Array.isArray(networks)) return false;
  return Object.values(networks).every(
    (n) => n !== null && typeof n === 'object' && Object.values(n as Record<string, unknown>).every((x) => x === undefined || typeof x === 'string' || typeof x === 'number'),
  );
}

/** Names peeked at in one round; more make it a whole fetch. */
const PEEK_LIMIT = 8;
/**
 * A name the masters hold no allocation for is asked about again after 250 ms, 500 ms, ... up to
 * this many times (about 8 s in all): a new agent's entry can arrive before the master asked
 * has applied its allocation. Then it waits for the next store change or whole fetch.
 */
const ABSENT_RETRIES = 5;
const ABSENT_FIRST_RETRY_MS = 250;

export interface AllocationViewStats {
  refreshes: number;
  refreshFailures: number;
  /** Single allocations asked for (new or contested agents). */
  peeks: number;
  /** Allocations from a master that were not well formed: dropped (LASHUP_ERR_ALLOCATION_INVALID). */
  invalid: number;
  /** Allocations learnt from the masters' signed announcements (new or changed ones). */
  announced: number;
  /**
   * Announcements not taken: unsigned, signed by an identity that is not the named master's,
   * malformed, or sharing an address or block with another agent's known allocation.
   */
  announcementsRefused: number;
  /** Announcements older than announcementMaxAgeMs, left to the masters' answers (normal at start). */
  announcementsStale: number;
  /** Announcements taken without their underlay address, which was not an IP address (ANNOUNCEMENT_UNDERLAY_INVALID). */
  announcementsUnderlayInvalid: number;
  /** Allocations known now. */
  allocations: number;
}

export class AllocationView implements EntryAuthority, RowOwnership {
  readonly stats: AllocationViewStats = {
    refreshes: 0,
    refreshFailures: 0,
    peeks: 0,
    invalid: 0,
    announced: 0,
    announcementsRefused: 0,
    announcementsStale: 0,
    announcementsUnderlayInvalid: 0,
    allocations: 0,
  };
  /** When each allocation taken from an announcement arrived (ms, this clock). */
  private readonly announcedAtMs = new Map<string, number>();
  /** The underlay address the granting master's membership gave in an announcement, by agent. */
  private readonly announcedUnderlay = new Map<string, string>();
  private saveTimer: TimerHandle | undefined;
  private lastRefusalLogMs = -Infinity;
  private lastUnderlayLogMs = -Infinity;
  private readonly pending = new Set<string>();
  private readonly absent = new Map<string, { untilMs: number; tries: number }>();
  private readonly retries = new Set<TimerHandle>();
  private leases = new Map<string, Lease>();
  /** VTEP address -> allocation, rebuilt on the first look-up after a change. */
  private vteps: Map<string, Lease> | undefined;
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
      this.replace(Array.isArray(saved.leases) ? saved.leases : [], -Infinity);
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

  byAgent(agent: string): Lease | undefined {
    return this.leases.get(agent);
  }

  byVtep(vtepIp: string): Lease | undefined {
    if (this.vteps === undefined) {
      this.vteps = new Map();
      for (const lease of this.leases.values()) this.vteps.set(lease.vtepIp, lease);
    }
    return this.vteps.get(vtepIp);
  }

  /**
   * Allocations taken from an announcement that arrived within the last `withinMs` (by this
   * node's clock), with their arrival time: the agents that were just granted a lease, whose
   * own entries may still be on their way (overlay-agent.ts routes them meanwhile).
   */
  recentlyAnnounced(withinMs: number): RecentAnnouncement[] {
    const since = this.options.clock.nowMs() - withinMs;
    const out: RecentAnnouncement[] = [];
    for (const [agent, at] of this.announcedAtMs) {
      const lease = this.leases.get(agent);
      if (at < since || lease === undefined) continue;
      const underlayIp = this.announcedUnderlay.get(agent);
      out.push(underlayIp === undefined ? { lease, announcedAtMs: at } : { lease, announcedAtMs: at, underlayIp });
    }
    return out;
  }

  /** A write over `agent`'s rows was refused: its allocation may have changed (a release); ask. */
  contested(agent: string): void {
    this.refresh([agent]);
  }

  signatureProblem(network: string, vtepIp: string, raw: unknown, peerId: string): string | undefined {
    const verifier = this.options.verifier;
    return verifier === undefined ? undefined : rowSignatureProblem(verifier, peerId, overlayKey(network), vtepIp, raw);
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
    for (const timer of this.retries) timer.cancel();
    this.retries.clear();
    // A change still waiting for its write is written now: the file is what a restart has.
    if (this.saveTimer !== undefined) {
      this.saveTimer.cancel();
      this.saveTimer = undefined;
      this.save();
    }
  }

  /**
   * The store's announcement for `agent` changed (`raw` undefined: removed). A valid, recent one
   * is taken as a master's answer. An invalid one, or one that shares a VTEP address, MAC or
   * block with another agent's known allocation, is counted, logged (at most every 10 s) and
   * left out, and the masters are asked instead (about both agents, for a conflict: one of the
   * two allocations is stale, or the announcement is a replay). An old one is left to the
   * masters' answers. A removal (a release) is checked with them.
   */
  announced(agent: string, raw: unknown): void {
    if (this.stopped) return;
    const trust = this.options.announcements;
    if (trust === undefined) return;
    if (raw === undefined) {
      this.announcedAtMs.delete(agent);
      this.announcedUnderlay.delete(agent);
      if (this.leases.has(agent)) this.refresh([agent]);
      return;
    }
    const signedAtUs = rowSignature(raw)?.ts;
    if (signedAtUs !== undefined && signedAtUs / 1000 < this.options.clock.wallMs() - (this.options.announcementMaxAgeMs ?? 60_000)) {
      this.stats.announcementsStale++;
      return;
    }
    const checked = checkAnnouncement(agent, raw, trust);
    if (!checked.ok || !isLease(checked.lease)) {
      this.refuseAnnouncement(agent, checked.ok ? 'the announced allocation is malformed' : checked.reason, [agent]);
      return;
    }
    const lease = checked.lease;
    const conflict = this.conflictOf(lease);
    if (conflict !== undefined) {
      this.refuseAnnouncement(agent, `it shares an address or block with ${conflict}'s allocation`, [agent, conflict]);
      return;
    }
    this.announcedAtMs.set(agent, this.options.clock.nowMs());
    if (checked.underlayProblem !== undefined) this.underlayInvalid(agent, checked.underlayProblem);
    if (checked.underlayIp === undefined) this.announcedUnderlay.delete(agent);
    else this.announcedUnderlay.set(agent, checked.underlayIp);
    this.absent.delete(agent);
    if (!this.set(agent, lease)) return;
    this.stats.announced++;
    this.stats.allocations = this.leases.size;
    this.changed();
  }

  /** Holds `lease` as `agent`'s allocation (undefined: none); true when that changed anything. */
  private set(agent: string, lease: Lease | undefined): boolean {
    if (lease === undefined ? !this.leases.delete(agent) : jsonEquals(lease, this.leases.get(agent))) return false;
    if (lease !== undefined) this.leases.set(agent, lease);
    this.vteps = undefined;
    return true;
  }

  private refuseAnnouncement(agent: string, reason: string, ask: string[]): void {
    this.stats.announcementsRefused++;
    const now = this.options.clock.nowMs();
    if (now - this.lastRefusalLogMs >= 10_000) {
      this.lastRefusalLogMs = now;
      this.options.logger?.warn({ code: ANNOUNCEMENT_REFUSED, agent, reason, refused: this.stats.announcementsRefused }, 'an allocation announcement is not taken; asking the masters instead');
    }
    this.refresh(ask);
  }

  private underlayInvalid(agent: string, reason: string): void {
    this.stats.announcementsUnderlayInvalid++;
    const now = this.options.clock.nowMs();
    if (now - this.lastUnderlayLogMs < 10_000) return;
    this.lastUnderlayLogMs = now;
    this.options.logger?.warn(
      { code: ANNOUNCEMENT_UNDERLAY_INVALID, agent, reason, count: this.stats.announcementsUnderlayInvalid },
      "an allocation announcement's underlay address is left out; the agent is routed once membership knows its address",
    );
  }

  /** Another agent whose known allocation shares a VTEP address, MAC or block with `lease`. */
  private conflictOf(lease: Lease): string | undefined {
    const blocks = new Set(leaseBlocks(lease));
    const mac = lease.vtepMac.toLowerCase();
    for (const [other, held] of this.leases) {
      if (other === lease.agent) continue;
      if (held.vtepIp === lease.vtepIp || held.vtepMac.toLowerCase() === mac || (lease.vtepIp6 !== undefined && held.vtepIp6 === lease.vtepIp6)) return other;
      if (leaseBlocks(held).some((b) => blocks.has(b))) return other;
    }
    return undefined;
  }

  /**
   * The store's `allocations` key changed from `before` to `after`: each announcement that is
   * new, re-signed or removed is looked at (`announced`); unchanged ones are not checked again.
   */
  announcementsChanged(before: Readonly<Record<string, unknown>> | undefined, after: Readonly<Record<string, unknown>> | undefined): void {
    for (const [agent, raw] of Object.entries(after ?? {})) {
      const held = before?.[agent];
      const signature = rowSignature(raw)?.s;
      if (held === undefined || signature === undefined || signature !== rowSignature(held)?.s) this.announced(agent, raw);
    }
    for (const agent of Object.keys(before ?? {})) if (after?.[agent] === undefined) this.announced(agent, undefined);
  }

  /** Whether `agent`'s allocation was announced at or after `sinceMs` (an answer asked before it is older). */
  private announcedSince(agent: string, sinceMs: number): boolean {
    const at = this.announcedAtMs.get(agent);
    return at !== undefined && at >= sinceMs;
  }

  /** The masters hold nothing for `agent` (yet?): ask again later, a few times, backing off. */
  private absentFor(agent: string): void {
    const tries = (this.absent.get(agent)?.tries ?? 0) + 1;
    const waitMs = ABSENT_FIRST_RETRY_MS * 2 ** (tries - 1);
    this.absent.set(agent, { untilMs: this.options.clock.nowMs() + waitMs, tries });
    if (tries > ABSENT_RETRIES) return;
    const timer = this.options.clock.setTimer(waitMs, () => {
      this.retries.delete(timer);
      this.refresh([agent]);
    });
    this.retries.add(timer);
  }

  /** Entries of these agents could not be vouched for: ask about them soon. */
  refresh(agents: readonly string[]): void {
    if (this.stopped) return;
    const now = this.options.clock.nowMs();
    for (const agent of agents) if ((this.absent.get(agent)?.untilMs ?? -Infinity) <= now) this.pending.add(agent);
    if (this.pending.size === 0 || this.soon !== undefined) return;
    const wait = Math.max(0, this.lastFetchMs + this.options.minRefreshMs - now);
    this.soon = this.options.clock.setTimer(wait, () => {
      this.soon = undefined;
      this.askPending();
    });
  }

  private askPending(): void {
    if (this.stopped || this.inFlight) return;
    const names = [...this.pending];
    this.pending.clear();
    if (names.length > PEEK_LIMIT) {
      this.fetchNow();
      return;
    }
    this.inFlight = true;
    const askedAtMs = this.options.clock.nowMs();
    this.lastFetchMs = askedAtMs;
    let open = names.length;
    let changed = false;
    for (const agent of names) {
      this.stats.peeks++;
      this.options.peek(agent, (lease, error) => {
        if (!this.stopped) {
          if (lease === undefined) {
            this.stats.refreshFailures++;
            this.options.logger?.debug({ agent, err: error }, 'allocation not peeked at');
          } else if (lease !== null && !isLease(lease)) {
            this.invalidSeen(1);
          } else if (!this.announcedSince(agent, askedAtMs)) {
            // (Otherwise the answer is older than the announcement that arrived meanwhile, from
            // a master that had not applied it yet: the announcement stands.)
            if (lease === null) this.absentFor(agent);
            else this.absent.delete(agent);
            if (this.set(agent, lease ?? undefined)) changed = true;
          }
        }
        if (--open > 0) return;
        this.inFlight = false;
        this.stats.allocations = this.leases.size;
        if (changed && !this.stopped) this.changed();
        if (this.pending.size > 0) this.refresh([]);
      });
    }
  }

  private fetchNow(): void {
    if (this.stopped || this.inFlight) return;
    this.inFlight = true;
    const askedAtMs = this.options.clock.nowMs();
    this.lastFetchMs = askedAtMs;
    this.options.fetch((leases, error) => {
      this.inFlight = false;
      if (this.stopped) return;
      if (leases === undefined) {
        this.stats.refreshFailures++;
        this.options.logger?.debug({ err: error }, 'allocations not refreshed; keeping the last known');
        return;
      }
      this.stats.refreshes++;
      if (this.replace(leases, askedAtMs)) this.changed();
      if (this.pending.size > 0) this.refresh([]);
    });
  }

  /** Tells the listeners, and writes the allocations to disk soon (once for changes close together). */
  private changed(): void {
    if (this.saveTimer === undefined && !this.stopped)
      this.saveTimer = this.options.clock.setTimer(this.options.saveDelayMs ?? 1000, () => {
        this.saveTimer = undefined;
        this.save();
      });
    for (const listener of this.listeners) listener();
  }

  private save(): void {
    try {
      writeFileAtomic(this.options.fs, this.options.path, `${JSON.stringify({ version: 1, leases: [...this.leases.values()] }, null, 1)}\n`, { mode: 0o600 });
    } catch (err) {
      this.options.logger?.warn({ err: (err as Error).message }, 'allocations could not be saved; a restart without masters will not know them');
    }
  }

  private invalidSeen(count: number): void {
    this.stats.invalid += count;
    this.options.logger?.warn({ code: ALLOCATION_INVALID, count }, 'a master sent malformed allocations; they are dropped');
  }

  /**
   * Replaces the allocations (well-formed ones only) with a master's whole list, asked at
   * `askedAtMs`; an allocation announced since then stays as announced. Returns whether they changed.
   */
  private replace(leases: readonly unknown[], askedAtMs: number): boolean {
    const next = new Map<string, Lease>();
    let invalid = 0;
    for (const lease of leases) {
      if (isLease(lease)) next.set(lease.agent, lease);
      else invalid++;
    }
    if (invalid > 0) this.invalidSeen(invalid);
    for (const [agent, lease] of this.leases) if (this.announcedSince(agent, askedAtMs)) next.set(agent, lease);
    const same = next.size === this.leases.size && [...next].every(([agent, lease]) => jsonEquals(lease, this.leases.get(agent)));
    this.leases = next;
    this.vteps = undefined;
    this.stats.allocations = next.size;
    return !same;
  }
}
