/**
 * The agent's overlay loop: membership -> store -> routes -> dataplane.
 *
 * - Its lease (from the allocator) becomes the local devices (VTEP, bridges, gateway addresses)
 *   and its own entry in every leased network's `overlay/<network>` map, keyed by its VTEP IP.
 * - Every `overlay/*` key it sees becomes one desired group per remote agent; only groups whose
 *   entries changed are handed to the reconciler, so a change of one agent among thousands costs
 *   a few operations.
 * - The VTEP parameters come from the overlay configuration the masters publish (the agent's own
 *   config file until that is known), so all agents agree on VNI, port, MTU and names.
 *
 * Bad entries from other nodes are logged and counted by error code, never thrown.
 */
import type { Clock, TimerHandle } from '../common/index.js';
import type { KvStore } from '../kv/index.js';
import { leaseBlocks, type Lease, type OverlayConfig } from '../ipam/index.js';
import type { Logger } from '../log/index.js';
import type { Reconciler } from '../dataplane/index.js';
import { leaseEntry, localDesired, OVERLAY_KEY_PREFIX, RemoteStateCache, remoteDesired, TrustCache, type EntryAuthority, type OverlayEntry } from '../routes/index.js';
import type { VtepConfig } from '../vxlan/index.js';
import { publishOverlayEntry, rowSignature, unsignedPart, type OverlayConfigView, type RowSigner } from '../keyspace/index.js';
import { isDeepStrictEqual } from 'node:util';
import type { DesiredState } from '../dataplane/index.js';

export interface OverlayAgentOptions {
  name: string;
  underlayIp: string;
  kv: KvStore;
  reconciler: Reconciler;
  /** The overlay configuration in use (the masters' published one once known, validated). */
  overlay: OverlayConfigView;
  /** Time for the coalescing timer (the simulated cluster runs the agent on virtual time). */
  clock: Clock;
  /**
   * The masters' allocations, against which other agents' entries are checked: an entry that
   * does not match is not programmed (counted and listed as untrusted) and asks for a refresh
   * (a new agent's allocation may just not be known yet). Absent: every valid entry is taken.
   */
  authority?: EntryAuthority & {
    refresh(agents: readonly string[]): void;
    onChange(listener: () => void): () => void;
    /**
     * Allocations the masters announced within the last `withinMs` (see announcedRouteWindowMs);
     * absent: agents are routed from their own entries only.
     */
    recentlyAnnounced?(withinMs: number): Iterable<{ lease: Lease; announcedAtMs: number; underlayIp?: string }>;
  };
  /**
   * False when membership knows `agent` failed or gone; such an announced agent is not routed
   * before its entry arrives (one membership has not heard of yet counts as alive: the masters
   * just granted it a lease). Absent: every announced agent counts as alive.
   */
  alive?: (agent: string) => boolean;
  /**
   * How long a new agent is routed from the masters' announcement of its allocation while its
   * own entry has not arrived, in ms from the announcement's arrival. Default 30,000: the entry
   * normally follows within a second; a slow start under load can take a few. An agent whose
   * entry never comes (it died before publishing) loses the route when this ends.
   */
  announcedRouteWindowMs?: number;
  /** Signs this agent's entries (its peer identity); absent: entries are written unsigned. */
  signer?: RowSigner;
  logger?: Logger;
  /** Delay before recomputing remote groups after a store change, in ms; coalesces bursts. Default 5. */
  coalesceMs?: number;
  /**
   * This agent's own entry disappeared from a map it should be in (removed by a release, or
   * never stored). The owner confirms the lease with the masters and calls `republish()` when
   * it still holds: republishing blindly put a released agent's entry back next to the entry of
   * the agent that received its addresses.
   */
  onOwnEntryMissing?: () => void;
}

export interface OverlayAgentStats {
  /** Remote agents currently desired. */
  remoteAgents: number;
  /** Route recomputations. */
  recomputes: number;
  /** Groups handed to the reconciler (changed or removed). */
  groupChanges: number;
  /** Problems with store entries, by error code (current, from the last recomputation). */
  problems: Record<string, number>;
  /** Times this agent (re)published its own overlay entry. */
  publishes: number;
  /** Times the masters said this agent's lease no longer held. */
  leaseLost: number;
  /** Entries not programmed because they do not match the masters' allocations (current). */
  untrusted: number;
  /** Remote agents routed from the masters' announcement alone, their own entry not arrived yet (current). */
  announcedOnly: number;
  /** Agents routed from an announcement whose own entry did not arrive within the window (routes removed). */
  announcedExpired: number;
}

/** An entry left out because it does not match the masters' allocation. */
export interface UntrustedEntry {
  network: string;
  vtepIp: string;
  nodeId: unknown;
  reason: string;
}

function vtepConfigOf(overlay: OverlayConfig): VtepConfig {
  return { name: overlay.vtepName, vni: overlay.vni, port: overlay.vxlanPort, mtu: overlay.mtu, oui: overlay.vtepMacOui };
}

const prefixLen = (cidr: string | undefined): number | undefined => (cidr === undefined ? undefined : Number(cidr.split('/')[1]));

export class OverlayAgent {
  private readonly options: OverlayAgentOptions;
  private lease: Lease | undefined;
  /** The masters no longer hold the lease: its entries are not published until a new lease comes. */
  private withdrawn = false;
  private overlay: OverlayConfig;
  private readonly overlays = new Map<string, unknown>();
  private groups = new Map<string, DesiredState>();
  private timer: TimerHandle | undefined;
  /** A new lease's local devices are due (see setLease). */
  private localTimer: TimerHandle | undefined;
  private readonly unsubscribers: (() => void)[] = [];
  /** Trust verdicts of unchanged entries, reused across recomputations. */
  private readonly trust = new TrustCache();
  /** Desired states of unchanged remote agents, reused across recomputations. */
  private readonly remoteStates = new RemoteStateCache();
  /**
   * Per announced agent: the allocation and the networks in which its own entry has been seen.
   * Once seen, a network is never filled in from the announcement again: an entry that then
   * disappears was removed on purpose (a leave, a release) and its routes must go.
   */
  private readonly entriesSeen = new Map<string, { lease: Lease; networks: Set<string> }>();
  /** Agents routed from an announcement at the last recomputation, with when that ends. */
  private announcedRouted = new Map<string, number>();
  /** Recently announced agents left unrouted at the last recomputation: membership did not know them alive. */
  private announcedWaiting = new Set<string>();
  /** Recomputes when the next announced-only route's window ends. */
  private expiryTimer: TimerHandle | undefined;
  readonly stats: OverlayAgentStats = { remoteAgents: 0, recomputes: 0, groupChanges: 0, problems: {}, publishes: 0, leaseLost: 0, untrusted: 0, announcedOnly: 0, announcedExpired: 0 };
  /** The entries left out at the last recomputation (`lashup routes`). */
  untrusted: UntrustedEntry[] = [];

  constructor(options: OverlayAgentOptions) {
    this.options = options;
    this.overlay = options.overlay.current;
  }

  start(): void {
    const { kv } = this.options;
    if (this.options.authority !== undefined) this.unsubscribers.push(this.options.authority.onChange(() => this.schedule()));
    this.unsubscribers.push(
      // The view replays the current configuration, validated; an invalid one never gets here.
      this.options.overlay.subscribe((config) => {
        if (config === this.overlay) return;
        this.overlay = config;
        this.applyLocal();
        this.schedule();
      }),
      kv.subscribe(
        (key) => key.startsWith(OVERLAY_KEY_PREFIX),
        (change) => {
          const network = change.key.slice(OVERLAY_KEY_PREFIX.length);
          if (change.new === undefined) this.overlays.delete(network);
          else this.overlays.set(network, change.new);
          // Our own entry went missing (removed by a release, or never stored) or was overwritten
          // by another writer (every agent would then leave our routes out as untrusted): the
          // owner checks the lease with the masters before it is published again. (An overwrite
          // used to wait for the next lease confirmation, up to 30 s.)
          const own = this.lease === undefined ? undefined : this.ownEntry(this.lease, network);
          const stored = this.lease === undefined ? undefined : change.new?.[this.lease.vtepIp];
          // The stored entry carries a signature the own entry does not have: compared without it.
          const unsigned = unsignedPart(stored);
          const signedAsNeeded = this.options.signer === undefined || rowSignature(stored) !== undefined;
          if (own !== undefined && !this.withdrawn && (unsigned === undefined || !isDeepStrictEqual(unsigned, own) || !signedAsNeeded)) {
            if (this.options.onOwnEntryMissing === undefined) this.publish();
            else this.options.onOwnEntryMissing();
          }
          this.schedule();
        },
      ),
    );
  }

  stop(): void {
    for (const u of this.unsubscribers.splice(0)) u();
    this.timer?.cancel();
    this.timer = undefined;
    this.localTimer?.cancel();
    this.localTimer = undefined;
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
  }

  /**
   * Membership's view of `agent` changed (joined, failed, left, ...): recomputes when that
   * decides an announced agent's route. A new agent's announcement can arrive before the news
   * of its join (measured with 32 agents), and nothing in the store changes when it comes.
   */
  memberChanged(agent: string): void {
    if (this.announcedWaiting.has(agent) || this.announcedRouted.has(agent)) this.schedule();
  }

  /** Takes a new or renewed lease: local devices, own entries, and remote routes re-filtered. */
  setLease(lease: Lease): void {
    const changed = this.withdrawn || this.lease === undefined || !isDeepStrictEqual(lease, this.lease);
    this.lease = lease;
    this.withdrawn = false;
    if (!changed) return;
    this.options.logger?.info({ vtepIp: lease.vtepIp, networks: Object.keys(lease.networks) }, 'lease in use');
    // The entry is published the moment the lease is granted, in the same turn (before the local
    // devices are worked out: other agents need only the lease), and travels as a
    // store delta: flooded to every kept connection (the masters' included, which every agent
    // keeps), then relayed along the gossipsub mesh, about as many hops as membership news
    // takes. Chosen over carrying the entry in membership metadata (512 bytes, shared with the
    // role and addresses, and two subnets with IPv6 do not fit) and over having the masters
    // publish it (they would write other agents' entries, which the trust issue means to restrict); one
    // write path keeps anti-entropy, removal and conflict handling in one place. Other agents
    // do not wait for it: they route this agent from the leader's signed announcement of the
    // lease, which leaves the leader before this agent has its answer (addAnnounced). Measured
    // in `npm run bench -- e2e` (lease -> routes).
    this.publish();
    // The local devices (and the routes) are worked out in a later turn, not this one: the
    // entry leaves the process only when this turn ends (next-turn.ts says why and what it
    // cost); this agent's own device work was 5-87 ms of the turn. A clock timer, not nextTurn,
    // so that simulated clusters drive it.
    this.localTimer ??= this.options.clock.setTimer(0, () => {
      this.localTimer = undefined;
      this.applyLocal();
      this.schedule();
    });
  }

  get currentLease(): Lease | undefined {
    return this.lease;
  }

  /** The lease was confirmed by the masters: put back any own entry that is missing. */
  republish(): void {
    if (!this.withdrawn) this.publish();
  }

  /**
   * The masters no longer hold this agent's lease: stop publishing its entries (the master that
   * released it removed them). The kernel keeps the devices until a new lease replaces them.
   */
  leaseLost(): void {
    this.withdrawn = true;
    this.stats.leaseLost++;
  }

  private applyLocal(): void {
    if (this.lease === undefined) return;
    try {
      const vtepPrefixLen6 = prefixLen(this.overlay.vtepSubnet6);
      this.options.reconciler.setDesiredGroup(
        'local',
        localDesired(vtepConfigOf(this.overlay), {
          underlayIp: this.options.underlayIp,
          lease: this.lease,
          vtepPrefixLen: prefixLen(this.overlay.vtepSubnet) as number,
          ...(vtepPrefixLen6 === undefined ? {} : { vtepPrefixLen6 }),
        }),
      );
    } catch (err) {
      this.options.logger?.error({ err }, 'the local overlay devices cannot be programmed from this lease');
    }
  }

  /** This agent's own entry in `network`'s map, as its lease makes it. */
  private ownEntry(lease: Lease, network: string): OverlayEntry | undefined {
    return leaseEntry({ ...lease, agent: this.options.name }, network, this.options.underlayIp);
  }

  /** Writes this agent's entry into every leased network's map (only where it differs). */
  private publish(): void {
    const lease = this.lease;
    if (lease === undefined) return;
    const { kv } = this.options;
    for (const network of Object.keys(lease.networks)) {
      const entry = this.ownEntry(lease, network) as OverlayEntry;
      if (!publishOverlayEntry(kv, network, lease.vtepIp, entry, this.options.signer)) continue;
      this.stats.publishes++;
      this.options.logger?.info({ network, vtepIp: lease.vtepIp }, 'overlay entry published');
    }
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = this.options.clock.setTimer(this.options.coalesceMs ?? 5, () => {
      this.timer = undefined;
      this.recompute();
    });
  }

  /**
   * The store's overlay maps without the entries that contradict the masters' allocations (this
   * agent's own entry aside: it is not routed to). Left-out entries are logged when they change.
   */
  private trusted(lease: Lease): Map<string, unknown> {
    const authority = this.options.authority;
    if (authority === undefined) return this.overlays;
    const out = new Map<string, unknown>();
    const untrusted: UntrustedEntry[] = [];
    for (const [network, map] of this.overlays) {
      if (map === null || typeof map !== 'object') {
        out.set(network, map);
        continue;
      }
      const kept: Record<string, unknown> = {};
      for (const [vtepIp, entry] of Object.entries(map as Record<string, unknown>)) {
        const reason = vtepIp === lease.vtepIp ? undefined : this.trust.reason(network, vtepIp, entry, authority);
        if (reason === undefined) Object.defineProperty(kept, vtepIp, { value: entry, enumerable: true });
        else untrusted.push({ network, vtepIp, nodeId: (entry as { nodeId?: unknown } | null)?.nodeId, reason });
      }
      out.set(network, kept);
    }
    if (untrusted.length > 0) {
      authority.refresh([...new Set(untrusted.map((u) => u.nodeId).filter((n): n is string => typeof n === 'string'))]);
      if (!isDeepStrictEqual(untrusted, this.untrusted))
        this.options.logger?.warn({ untrusted: untrusted.slice(0, 5), total: untrusted.length }, "overlay entries that do not match the masters' allocations are not programmed");
    }
    this.untrusted = untrusted;
    this.stats.untrusted = untrusted.length;
    this.addAnnounced(lease, out, authority);
    return out;
  }

  /**
   * Fills in, for every agent the masters announced an allocation for within the window, the
   * entry it will publish, in each network where its own entry has not arrived (and never did).
   *
   * Why: a new agent's own entry leaves it only after the lease answer has come back, been
   * stored and the agent's first gossip stream is open; measured in `bench e2e` (16 agents),
   * it was held 30-90 ms for that stream, then sent to the one peer it had, and reached the
   * last agent 500-570 ms after the lease along the mesh, every agent programming the route
   * 360-1,070 ms after the lease. The leader's signed announcement leaves at commit, before the
   * agent even has its answer, and it reaches every agent in one hop (every agent keeps a
   * connection to every master, and a node's own publication is flooded to all its
   * subscribers). The announcement is the authority entries are checked against, so an entry
   * built from it (leaseEntry, the same function the agent uses, with the underlay address
   * membership knows) is what a trusted entry would say: the real entry, when it arrives,
   * changes no route. The masters still write no agent's entry (the trust issue's rule).
   *
   * Bounds: only agents membership does not know failed or gone, with an underlay address
   * (membership's, or the one in the announcement), within
   * announcedRouteWindowMs of the announcement; never over a trusted entry, and never in a
   * network where the agent's own entry was already seen (it was removed on purpose since).
   */
  private addAnnounced(lease: Lease, out: Map<string, unknown>, authority: NonNullable<OverlayAgentOptions['authority']>): void {
    const windowMs = this.options.announcedRouteWindowMs ?? 30_000;
    const routed = new Map<string, number>();
    const waiting = new Set<string>();
    const recent = [...(authority.recentlyAnnounced?.(windowMs) ?? [])];
    for (const { lease: announced, announcedAtMs, underlayIp } of recent) {
      const agent = announced.agent;
      if (agent === this.options.name || announced.vtepIp === lease.vtepIp) continue;
      let seen = this.entriesSeen.get(agent);
      if (seen === undefined || seen.lease !== announced) {
        seen = { lease: announced, networks: new Set() };
        this.entriesSeen.set(agent, seen);
      }
      // Membership's address first (the trust check compares entries with it), else the one
      // the granting master's membership gave in the announcement.
      const underlay = authority.underlay(agent) ?? underlayIp;
      const alive = underlay !== undefined && (this.options.alive?.(agent) ?? true);
      for (const network of Object.keys(announced.networks)) {
        const map = out.get(network);
        // A map that is not an object is reported by remoteDesired as it is; nothing is added to it.
        if (map !== undefined && (map === null || typeof map !== 'object')) continue;
        const present = map !== undefined && Object.hasOwn(map, announced.vtepIp);
        if (present && ((map as Record<string, unknown>)[announced.vtepIp] as { nodeId?: unknown } | null)?.nodeId === agent) seen.networks.add(network);
        if (present || seen.networks.has(network)) continue;
        if (!alive) {
          waiting.add(agent);
          continue;
        }
        const entry = leaseEntry(announced, network, underlay);
        if (entry === undefined) continue;
        const filled = (map ?? {}) as Record<string, unknown>;
        Object.defineProperty(filled, announced.vtepIp, { value: entry, enumerable: true });
        out.set(network, filled);
        routed.set(agent, announcedAtMs + windowMs);
      }
    }
    // Agents routed from an announcement last time whose window has ended without their entry.
    const nowMs = this.options.clock.nowMs();
    for (const [agent, untilMs] of this.announcedRouted) if (!routed.has(agent) && untilMs <= nowMs && !this.entriesSeen.get(agent)?.networks.size) this.stats.announcedExpired++;
    // Forget agents no longer announced recently (their window ended, or they were released).
    const recentAgents = new Set(recent.map((r) => r.lease.agent));
    for (const agent of this.entriesSeen.keys()) if (!recentAgents.has(agent)) this.entriesSeen.delete(agent);
    this.announcedRouted = routed;
    this.announcedWaiting = waiting;
    this.stats.announcedOnly = routed.size;
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
    if (routed.size > 0) {
      const dueMs = Math.max(0, Math.min(...routed.values()) - nowMs) + 1;
      this.expiryTimer = this.options.clock.setTimer(dueMs, () => {
        this.expiryTimer = undefined;
        this.schedule();
      });
    }
  }

  private recompute(): void {
    const lease = this.lease;
    // Remote entries go through the local VTEP: none before this agent has a lease (and a VTEP).
    if (lease === undefined) return;
    this.stats.recomputes++;
    const selfSubnets = leaseBlocks(lease);
    const { groups, problems } = remoteDesired(vtepConfigOf(this.overlay), lease.vtepIp, this.trusted(lease), selfSubnets, this.remoteStates);
    const counts: Record<string, number> = {};
    for (const p of problems) counts[p.code] = (counts[p.code] ?? 0) + 1;
    if (problems.length > 0 && !isDeepStrictEqual(counts, this.stats.problems)) {
      this.options.logger?.warn({ problems: problems.slice(0, 5).map((p) => p.message), total: problems.length }, 'overlay entries left out');
    }
    this.stats.problems = counts;
    // Compared structurally (key order does not matter), not as JSON text.
    const next = new Map<string, DesiredState>();
    for (const [group, state] of groups) {
      next.set(group, state);
      const before = this.groups.get(group);
      if (before === undefined || !isDeepStrictEqual(before, state)) {
        this.options.reconciler.setDesiredGroup(group, state);
        this.stats.groupChanges++;
      }
    }
    for (const group of this.groups.keys()) {
      if (!next.has(group)) {
        this.options.reconciler.setDesiredGroup(group, undefined);
        this.stats.groupChanges++;
      }
    }
    this.groups = next;
    this.stats.remoteAgents = next.size;
  }
}
