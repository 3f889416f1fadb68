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
import { localDesired, OVERLAY_KEY_PREFIX, RemoteStateCache, remoteDesired, TrustCache, type EntryAuthority, type OverlayEntry } from '../routes/index.js';
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
  authority?: EntryAuthority & { refresh(agents: readonly string[]): void; onChange(listener: () => void): () => void };
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
  readonly stats: OverlayAgentStats = { remoteAgents: 0, recomputes: 0, groupChanges: 0, problems: {}, publishes: 0, leaseLost: 0, untrusted: 0 };
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
    // write path keeps anti-entropy, removal and conflict handling in one place. Measured in
    // `npm run bench -- e2e` (lease -> routes).
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
    const n = lease.networks[network];
    if (n === undefined) return undefined;
    const entry: OverlayEntry = { agentIp: this.options.underlayIp, vtepMac: lease.vtepMac, nodeId: this.options.name };
    if (n.subnet !== undefined) entry.subnet = n.subnet;
    if (n.subnet6 !== undefined && lease.vtepIp6 !== undefined) {
      entry.subnet6 = n.subnet6;
      entry.vtepIp6 = lease.vtepIp6;
    }
    return entry;
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
    return out;
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
