/**
 * The API backend over the running daemon's parts. It is given those parts (not the Daemon
 * class), so the API does not import the daemon and the daemon does not import the API's
 * internals.
 */
import type { CniService, ConflistKeeper } from '../cni/index.js';
import { isLashupError } from '../common/index.js';
import type { Reconciler } from '../dataplane/index.js';
import type { DaemonMetrics } from '../metrics/index.js';
import { decodeResult, encodeCommand, type Lease } from '../ipam/index.js';
import { readCniUsage, readDockerUsage, removeAgentTasks, withdrawAllocation } from '../keyspace/index.js';
import { RaftErrorCode } from '../raft/index.js';
import type { ApiBackend, UsageRow } from './api.js';
import { BadRequestError, ConflictError, MisdirectedError, NotFoundError } from './api-errors.js';
import type { DaemonConfig } from './config.js';
import type { LashupNode } from './node.js';
import type { OverlayAgent } from './overlay-agent.js';
import type { AllocationView } from './allocation-view.js';
import { usageMetrics } from './usage-metrics.js';
import type { Readiness } from './readiness.js';
import type { OwnedRowsAdmission } from '../keyspace/index.js';

/** What the API reads of the daemon. */
export interface ApiDaemonView {
  readonly config: DaemonConfig;
  readonly version: string;
  readonly node: LashupNode;
  readonly reconciler: Reconciler | undefined;
  readonly overlayAgent: OverlayAgent | undefined;
  readonly allocationView: AllocationView | undefined;
  /** The check of remote writes over agents' own rows (masters: the node's; agents: the overlay component's). */
  readonly rowAdmission: OwnedRowsAdmission | undefined;
  readonly cni: CniService | undefined;
  readonly conflists: ConflistKeeper | undefined;
  readonly stats: { startedAtMs: number; releases: number; releasesRefused: number };
  /** Extra components' stats for /metrics, by component name. */
  componentStats(): Record<string, object | undefined>;
  readonly metrics: DaemonMetrics;
  readonly lease: Lease | undefined;
  readiness(): Readiness;
  releaseRefusal(agent: string): string | undefined;
  canLeave(): boolean;
  requestLeave(): void;
  /** Removes a released agent's overlay entries; returns how many maps changed. */
  removeEntries(vtepIp: string): number;
}

export interface ReleaseResult {
  agent: string;
  released: boolean;
  entriesRemoved: number;
  forced: boolean;
}

export interface DaemonApiBackend extends ApiBackend {
  release(agent: string, force: boolean): Promise<ReleaseResult>;
}

export function createApiBackend(d: ApiDaemonView, nowWallMs: () => number = Date.now): DaemonApiBackend {
  const allocatorOrRefuse = (what: string) => {
    const allocator = d.node.allocator;
    if (allocator === undefined) throw new ConflictError('LASHUP_ERR_NOT_MASTER', `${what} runs on a master; ${d.config.name} is an ${d.config.role}`);
    return allocator;
  };
  // Address usage: a master's blocks and every agent's containers, an agent's own containers.
  const usage = () =>
    usageMetrics(
      d.node.kv,
      d.node.overlayConfig.current.networks.map((n) => n.name),
      d.node.allocator === undefined ? { agent: d.config.name } : { blocks: d.node.allocator.state.usage() },
    );
  return {
    status() {
      const counts: Record<string, number> = {};
      for (const m of d.node.membership.members()) counts[m.state] = (counts[m.state] ?? 0) + 1;
      const raft = d.node.allocator?.raft;
      const rec = d.reconciler?.stats();
      return {
        name: d.config.name,
        role: d.config.role,
        version: d.version,
        ...d.readiness(),
        uptimeMs: nowWallMs() - d.stats.startedAtMs,
        members: counts,
        ...(raft === undefined ? {} : { raft: { role: raft.role, term: raft.term, leader: raft.leaderId ?? null } }),
        ...(d.config.role === 'agent' ? { lease: d.lease ?? null, leaseWaiting: d.node.lease?.waitingFor() ?? null } : {}),
        ...(rec === undefined
          ? {}
          : { dataplane: { converged: rec.converged, conflicts: rec.conflicts, invalid: rec.invalid, remoteAgents: d.overlayAgent?.stats.remoteAgents ?? 0, lastApplyMs: rec.lastApplyMs } }),
      };
    },
    members() {
      return d.node.membership.members().map((m) => {
        const meta = d.node.meta(m.meta);
        return {
          name: m.name,
          state: m.state,
          incarnation: m.incarnation,
          address: m.address,
          ...(meta === undefined ? {} : { role: meta.role, underlayIp: meta.underlayIp, version: meta.version, tags: meta.tags ?? {} }),
        };
      });
    },
    kvGet: (key) => d.node.kv.get(key),
    kvWatch(key, onEvent) {
      return d.node.kv.subscribe(
        (k) => k === key,
        (change) => onEvent({ key: change.key, value: change.new, initial: change.initial }),
      );
    },
    routes() {
      const rec = d.reconciler;
      if (rec === undefined) throw new NotFoundError('LASHUP_ERR_NO_DATAPLANE', `${d.config.name} is a ${d.config.role} without a dataplane; ask an agent`);
      return { entries: rec.routeReport(), stats: rec.stats(), conflicts: rec.conflictReport(), untrusted: d.overlayAgent?.untrusted ?? [], overlay: d.overlayAgent?.stats, lease: d.lease };
    },
    allocations() {
      const allocator = d.node.allocator;
      if (allocator === undefined) return { lease: d.lease ?? null };
      // The leader answers behind a read barrier: just elected, it has not applied the log it
      // inherited, and answered no leases at all (seen by the lab during a rolling restart of
      // the masters). A follower, or a leader that lost its place meanwhile, answers what it has
      // applied (a moment stale).
      if (allocator.raft.role !== 'leader') return { leases: allocator.state.leases() };
      return new Promise((resolve) => allocator.raft.read(() => resolve({ leases: allocator.state.leases() })));
    },
    async release(agent, force) {
      if (agent.length === 0) throw new BadRequestError('agent name is empty; expected 1-256 characters');
      const allocator = allocatorOrRefuse('release');
      const refusal = d.releaseRefusal(agent);
      if (refusal !== undefined && !force) {
        d.stats.releasesRefused++;
        throw new ConflictError('LASHUP_ERR_RELEASE_REFUSED', refusal, { agent });
      }
      const forced = refusal !== undefined;
      return new Promise<ReleaseResult>((resolve, reject) => {
        // Read the agent's VTEP address behind a read barrier: a master that has just become
        // leader has not applied the log it inherited yet, so its state may lack the lease, and
        // the release then left the agent's overlay entries (and every agent's routes to it) behind.
        const propose = (vtepIp: string | undefined): void =>
          allocator.raft.propose(encodeCommand({ op: 'release', agent }), (error, result) => {
            if (error !== null) {
              if (isLashupError(error, RaftErrorCode.NotLeader)) return reject(new MisdirectedError(error.code, error.message));
              const failure: Error = error;
              return reject(new ConflictError(isLashupError(failure) ? failure.code : 'LASHUP_ERR_INTERNAL', failure.message));
            }
            const decoded = decodeResult(result as Uint8Array);
            if (!decoded.ok) return reject(new ConflictError(decoded.error.code, decoded.error.message));
            // Counted only when something was released: a no-op release is not an event.
            if (decoded.value === true) d.stats.releases++;
            const entriesRemoved = vtepIp === undefined ? 0 : d.removeEntries(vtepIp);
            // Its task records go with it: its names disappear from every DNS server.
            removeAgentTasks(d.node.kv, agent);
            // And its allocation's announcement: agents check with the masters and drop it.
            withdrawAllocation(d.node.kv, agent);
            resolve({ agent, released: decoded.value === true, entriesRemoved, forced });
          });
        allocator.raft.read((readError) => {
          if (readError !== null)
            return reject(readError.code === RaftErrorCode.NotLeader ? new MisdirectedError(readError.code, readError.message) : new ConflictError(readError.code, readError.message));
          propose(allocator.state.lease(agent)?.vtepIp);
        });
      });
    },
    usage(network) {
      const state = allocatorOrRefuse('usage').state;
      const usage = state.usage().filter((u) => u.network === network);
      if (usage.length === 0)
        throw new NotFoundError('LASHUP_ERR_UNKNOWN_NETWORK', `no overlay network ${JSON.stringify(network)}; known: ${[...new Set(state.usage().map((u) => u.network))].join(', ')}`);
      // Container addresses per agent, as the agents publish them (exhaustion before it bites).
      return {
        network,
        families: usage.map((u) => ({ family: u.family, used: u.used, total: u.total, free: u.total - u.used, agents: u.agents })),
        containers: readCniUsage(d.node.kv, network),
        dockerContainers: readDockerUsage(d.node.kv, network),
      };
    },
    prepareLeave() {
      if (!d.canLeave()) throw new ConflictError('LASHUP_ERR_NOT_SUPPORTED', 'this daemon is embedded; stop it from its owner');
      return () => d.requestLeave();
    },
    usageSummary() {
      const m = usage();
      const rows: UsageRow[] = [];
      for (const [network, byFamily] of Object.entries(m.blocksUsed ?? {})) {
        for (const [family, used] of Object.entries(byFamily)) rows.push({ network, kind: `blocks IPv${family}`, used, capacity: m.blocksCapacity?.[network]?.[family] ?? 0 });
      }
      for (const [network, byKind] of Object.entries(m.addressesUsed)) {
        for (const [kind, used] of Object.entries(byKind)) rows.push({ network, kind, used, capacity: m.addressesCapacity[network]?.[kind] ?? 0 });
      }
      return rows;
    },
    propagationBuckets: () => d.metrics.propagationBuckets(),
    metrics(apiStats) {
      const byState: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
      for (const m of d.node.membership.members()) byState[m.state] = (byState[m.state] ?? 0) + 1;
      const raft = d.node.allocator?.raft;
      return d.metrics.render({
        membership: d.node.membership.stats,
        udp: d.node.udp?.stats,
        libp2p: d.node.libp2p.stats,
        kv: d.node.kv.stats,
        kv_journal: d.node.persistence.stats,
        anti_entropy: d.node.antiEntropy.stats,
        peers: d.node.peers.stats,
        node: d.node.stats,
        overlay_config: d.node.overlayConfig.stats,
        allocator: d.node.allocator?.stats,
        lease: d.node.lease === undefined ? undefined : { ...d.node.lease.stats, held: d.lease !== undefined },
        dataplane: d.reconciler?.stats(),
        overlay: d.overlayAgent?.stats,
        allocation_view: d.allocationView?.stats,
        row_admission: d.rowAdmission?.stats,
        master_identities: d.node.masterIds?.stats,
        cni: d.cni?.stats,
        cni_conflist: d.conflists?.stats,
        daemon: d.stats,
        ...d.componentStats(),
        api: apiStats,
        members: { byState },
        usage: usage(),
        raft: raft === undefined ? undefined : { leader: raft.role === 'leader', leaderKnown: raft.leaderId !== undefined, term: raft.term },
      });
    },
  };
}
