/**
 * The lashup daemon: the node runtime (membership, store, allocator or lease client), the
 * dataplane (agents), masquerading and the HTTP API, started in dependency order and stopped in
 * reverse. A restart keeps identity (peer key, name), the lease (stored) and the kernel state:
 * the reconciler adopts what it finds and changes nothing that is already right.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniService, ConflistKeeper, type NetworkRange } from '../cni/index.js';
import type { Kernel } from '../dataplane/index.js';
import { openNetlinkKernel, Reconciler } from '../dataplane/index.js';
import type { Lease } from '../ipam/index.js';
import { componentLogger, silentLogger, type Logger } from '../log/index.js';
import { RealClock } from '../common/index.js';
import { ApiServer } from './api.js';
import { createApiBackend, type ReleaseResult } from './api-backend.js';
import { publishCniUsage, removeAgentEntries } from '../keyspace/index.js';
import type { DaemonConfig } from './config.js';
import { applyMasquerade } from './masquerade.js';
import { LashupNode } from './node.js';
import { OverlayAgent } from './overlay-agent.js';

/**
 * Publishes this agent's container address usage per network (only when it changed), so that
 * schedulers and operators see exhaustion cluster-wide (`/v1/overlay/{network}/usage`).
 */
function publishAgentCniUsage(node: LashupNode, agent: string, cni: CniService): void {
  for (const network of cni.pool.networks()) {
    const used = cni.pool.used(network);
    const total = cni.pool.capacity(network);
    publishCniUsage(node.kv, network, agent, { used, total, exhausted: used >= total });
  }
}

/**
 * An agent routes between its bridges and its VTEP, so IPv4 and IPv6 forwarding must be on (in
 * the daemon's network namespace). Without it everything programs and nothing passes.
 */
function enableForwarding(logger: Logger): void {
  for (const path of ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding']) {
    try {
      writeFileSync(path, '1');
    } catch (err) {
      logger.error({ err, path }, 'cannot enable forwarding; overlay traffic will not pass through this agent');
    }
  }
}

export interface DaemonOptions {
  logger?: Logger;
  /** A kernel backend to use instead of netlink (tests). */
  kernel?: Kernel;
  /** Skip nftables (tests without nft). */
  masquerade?: boolean;
  version?: string;
}

export interface DaemonStats {
  startedAtMs: number;
  masqueradeApplies: number;
  masqueradeFailures: number;
  releases: number;
  /** Releases refused because the agent may still be running (alive, suspect, or within the grace period). */
  releasesRefused: number;
}

export class Daemon {
  readonly stats: DaemonStats = { startedAtMs: Date.now(), masqueradeApplies: 0, masqueradeFailures: 0, releases: 0, releasesRefused: 0 };
  private stopping: Promise<void> | undefined;
  private readonly leaveListeners = new Set<() => void>();

  /** Registers what to do when `POST /v1/leave` asks the daemon to leave (the CLI stops it). */
  onLeaveRequest(listener: () => void): void {
    this.leaveListeners.add(listener);
  }

  /** Whether an owner listens for leave requests (the CLI does; embedding code may not). */
  canLeave(): boolean {
    return this.leaveListeners.size > 0;
  }

  /** Called by the API: asks the owner to stop with a goodbye. */
  requestLeave(): void {
    for (const l of this.leaveListeners) l();
  }

  private constructor(
    readonly config: DaemonConfig,
    readonly node: LashupNode,
    readonly reconciler: Reconciler | undefined,
    readonly kernel: Kernel | undefined,
    readonly overlayAgent: OverlayAgent | undefined,
    readonly logger: Logger,
    readonly version: string,
    readonly cni: CniService | undefined,
    readonly conflists: ConflistKeeper | undefined,
  ) {
    this.api = new ApiServer({ host: config.api.host, port: config.api.port, backend: this.backend, logger: componentLogger(logger, 'api') });
  }

  private readonly backend = createApiBackend(this);
  readonly api: ApiServer;

  /** Stats of components that are not fields of the API view, for /metrics. */
  componentStats(): Record<string, object | undefined> {
    return {};
  }

  removeEntries(vtepIp: string): number {
    return removeAgentEntries(this.node.kv, vtepIp);
  }

  static async start(config: DaemonConfig, options: DaemonOptions = {}): Promise<Daemon> {
    const logger = options.logger ?? silentLogger();
    const version = options.version ?? '0.1.0';
    const node = await LashupNode.start({
      name: config.name,
      dataDir: config.dataDir,
      role: config.role,
      underlayIp: config.underlayIp,
      version,
      clusterKeys: config.cluster.keys,
      ...(config.cluster.networkKey === undefined ? {} : { networkKey: config.cluster.networkKey }),
      label: config.cluster.label,
      bindHost: config.listen.bindHost,
      advertiseHost: config.listen.advertiseHost ?? config.underlayIp,
      udpPort: config.listen.udpPort,
      libp2pPort: config.listen.libp2pPort,
      seeds: config.seeds,
      packetTransport: config.membership.packetTransport,
      membershipProfile: config.membership.profile,
      membership: config.membership.overrides,
      masters: config.masters,
      overlay: config.overlay,
      leaseCheckIntervalMs: config.ipam.leaseCheckIntervalMs,
      peerDegree: config.peers.degree,
      peerRotateIntervalMs: config.peers.rotateIntervalMs,
      maxInboundPeers: config.peers.maxInbound,
      logger,
    });
    let kernel: Kernel | undefined;
    let reconciler: Reconciler | undefined;
    let overlayAgent: OverlayAgent | undefined;
    try {
      if (config.role === 'agent' && config.dataplane.enabled) {
        if (options.kernel === undefined) enableForwarding(logger);
        kernel = options.kernel ?? (await openNetlinkKernel({ logger: componentLogger(logger, 'netlink') }));
        reconciler = new Reconciler({ kernel, clock: new RealClock(), logger: componentLogger(logger, 'dataplane'), resyncIntervalMs: config.dataplane.resyncIntervalMs });
        void reconciler.start();
        overlayAgent = new OverlayAgent({
          name: config.name,
          underlayIp: config.underlayIp,
          kv: node.kv,
          reconciler,
          overlay: node.overlayConfig,
          logger: componentLogger(logger, 'overlay'),
          onOwnEntryMissing: () => node.lease?.confirm(),
        });
        overlayAgent.start();
        const agent = overlayAgent;
        node.onLease((lease) => agent.setLease(lease));
        node.onLeaseConfirmed(() => agent.republish());
        node.onLeaseLost(() => agent.leaseLost());
        const current = node.lease?.current;
        if (current !== undefined) agent.setLease(current);
      }
    } catch (err) {
      await node.stop();
      throw err;
    }
    let cni: CniService | undefined;
    let conflists: ConflistKeeper | undefined;
    if (config.role === 'agent' && config.dataplane.enabled && config.cni.enabled) {
      try {
        cni = new CniService({ agent: config.name, socketPath: config.cni.socketPath, leasesPath: join(config.dataDir, 'cni-leases.json'), logger: componentLogger(logger, 'cni') });
        await cni.listen();
        cni.startSweeping();
      } catch (err) {
        await node.stop();
        await reconciler?.stop();
        await kernel?.close();
        throw err;
      }
      const service = cni;
      const keeper = new ConflistKeeper({ dir: config.cni.confDir, socketPath: config.cni.socketPath, mtu: config.overlay.mtu, logger: componentLogger(logger, 'cni') });
      keeper.start();
      conflists = keeper;
      const onLease = (lease: Lease): void => {
        const ranges: Record<string, NetworkRange> = {};
        for (const [network, n] of Object.entries(lease.networks)) {
          // The Mesos half: IPv4 when the network has one, else IPv6 (dcos6).
          const half =
            n.mesos !== undefined && n.mesosGateway !== undefined
              ? { subnet: n.mesos, gateway: n.mesosGateway }
              : n.mesos6 !== undefined && n.mesosGateway6 !== undefined
                ? { subnet: n.mesos6, gateway: n.mesosGateway6 }
                : undefined;
          if (half === undefined) continue;
          ranges[network] = half;
        }
        keeper.setNetworks(Object.keys(ranges));
        service.setRanges(ranges);
        publishAgentCniUsage(node, config.name, service);
      };
      service.onChange = () => publishAgentCniUsage(node, config.name, service);
      node.onLease(onLease);
      const current = node.lease?.current;
      if (current !== undefined) onLease(current);
    }
    const daemon = new Daemon(config, node, reconciler, kernel, overlayAgent, logger, version, cni, conflists);
    try {
      await daemon.api.listen();
    } catch (err) {
      await daemon.stop(false);
      throw err;
    }
    if (config.role === 'agent' && config.dataplane.enabled && config.dataplane.masquerade && options.masquerade !== false) void daemon.masquerade();
    logger.info({ name: config.name, role: config.role, api: `${config.api.host}:${daemon.api.port}` }, 'lashup daemon started');
    return daemon;
  }

  /** The lease this agent holds. */
  get lease(): Lease | undefined {
    return this.node.lease?.current;
  }

  /**
   * Why `agent` may not be released now (undefined: it may): membership sees it alive or
   * suspect, or it left or failed less than `ipam.releaseGraceMs` ago. An agent membership
   * does not know (never seen, or reaped) may be released.
   */
  releaseRefusal(agent: string): string | undefined {
    const member = this.node.membership.member(agent);
    if (member === undefined) return undefined;
    if (member.state === 'alive' || member.state === 'suspect') {
      return `agent ${agent} is ${member.state} (membership sees it running): releasing it would hand its subnet and VTEP address to the next agent while it still uses them. Stop it first, or pass force to release it anyway`;
    }
    const sinceMs = this.node.nowMs() - member.stateChangedAtMs;
    const graceMs = this.config.ipam.releaseGraceMs;
    if (sinceMs < graceMs) {
      return `agent ${agent} ${member.state === 'left' ? 'left' : 'failed'} ${Math.round(sinceMs / 1000)} s ago; it may be restarting or behind a partition. Release it after ${Math.ceil((graceMs - sinceMs) / 1000)} s more (ipam.releaseGraceMs = ${graceMs}), or pass force`;
    }
    return undefined;
  }

  /**
   * Releases an agent's allocation (masters: through Raft) and removes its overlay entries.
   * Refused with LASHUP_ERR_RELEASE_REFUSED while the agent may still be running, unless forced.
   */
  release(agent: string, options: { force?: boolean } = {}): Promise<ReleaseResult> {
    return this.backend.release(agent, options.force === true);
  }

  private async masquerade(): Promise<void> {
    const error = await applyMasquerade(this.config.overlay);
    if (error === undefined) this.stats.masqueradeApplies++;
    else {
      this.stats.masqueradeFailures++;
      this.logger.error({ error }, 'nftables masquerade could not be applied; overlay traffic leaving the overlay is not masqueraded');
    }
  }

  /** Stops in reverse order; `leave` says goodbye to the cluster first (not a failure). */
  stop(leave = true): Promise<void> {
    this.stopping ??= (async () => {
      await this.api.close();
      this.conflists?.stop();
      await this.cni?.close();
      this.overlayAgent?.stop();
      await this.reconciler?.stop();
      await this.kernel?.close();
      if (leave) await this.node.stop();
      else await this.node.kill();
      this.logger.info('lashup daemon stopped');
    })();
    return this.stopping;
  }
}
