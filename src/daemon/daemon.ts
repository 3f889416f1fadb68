/**
 * The lashup daemon: a list of components per role (see component.ts), started in order and
 * stopped in reverse.
 *
 *   every node   node (membership, store, transports; the allocator on masters, the lease client on agents)
 *   agents       dataplane (netlink kernel + reconciler), overlay (lease -> devices, entries -> routes),
 *                firewall (nftables masquerade, level-triggered), cni (container addresses), conflists
 *   every node   dns (names), vips (masters: named VIPs' addresses; agents: the VIP rules)
 *   every node   api (HTTP API and /metrics)
 *
 * A restart keeps identity (peer key, name), the lease (stored) and the kernel state: the
 * reconciler adopts what it finds and changes nothing that is already right.
 */
import { ReadinessLatch, type Readiness } from './readiness.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniService, ConflistKeeper, TASK_NAME, type NetworkRange } from '../cni/index.js';
import type { Kernel } from '../dataplane/index.js';
import { openNetlinkKernel, Reconciler } from '../dataplane/index.js';
import { validateOverlayConfig, type Lease } from '../ipam/index.js';
import { componentLogger, silentLogger, type Logger } from '../log/index.js';
import { isIp, LashupError, RealClock } from '../common/index.js';
import { FIREWALL_TABLE, FirewallSyncer, NftCli, NftShell, firewallRuleset, networkPolicies, type FirewallBackend } from '../firewall/index.js';
import {
  ALLOCATIONS_KEY,
  OwnedRowsAdmission,
  publishCniUsage,
  publishDockerUsage,
  publishTasks,
  readTasks,
  removeAgentEntries,
  TASKS_KEY,
  VIP_ADDRESSES_KEY,
  MAX_TASK_VIPS,
  readVipAddresses,
  type PublishedTask,
} from '../keyspace/index.js';
import { DnsServer, inZone, parseTaskName, TaskCatalog } from '../dns/index.js';
import { systemResolvers } from './resolv-conf.js';
import { DockerEngine, DockerNetworkKeeper, desiredDockerNetworks, type DockerApi } from '../docker/index.js';
import { DaemonMetrics } from '../metrics/index.js';
import { NodeFs } from '../storage/index.js';
import { ApiServer } from './api.js';
import { groupId, loadOrCreateToken } from './api-credentials.js';
import { ApiError, BadRequestError, ConflictError, NotFoundError } from './api-errors.js';
import { createApiBackend, type ReleaseResult } from './api-backend.js';
import { ComponentRunner, type Component } from './component.js';
import type { DaemonConfig } from './config.js';
import { LashupNode } from './node.js';
import { LocalTasks } from './local-tasks.js';
import { vipsComponent } from './vips-component.js';
import { declaredNamedVips, validateVipDeclaration, VIP_TABLE, type VipNft } from '../vips/index.js';
import { OverlayAgent } from './overlay-agent.js';
import { nextTurn, type NextTurn } from './next-turn.js';
import { AllocationView } from './allocation-view.js';
import { LASHUP_VERSION } from './version.js';
import { codeCacheWarning } from './runtime-flags.js';

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

/** The Mesos half of each leased network: IPv4 when the network has one, else IPv6 (dcos6). */
function mesosRanges(lease: Lease): Record<string, NetworkRange> {
  const ranges: Record<string, NetworkRange> = {};
  for (const [network, n] of Object.entries(lease.networks)) {
    const half =
      n.mesos !== undefined && n.mesosGateway !== undefined
        ? { subnet: n.mesos, gateway: n.mesosGateway }
        : n.mesos6 !== undefined && n.mesosGateway6 !== undefined
          ? { subnet: n.mesos6, gateway: n.mesosGateway6 }
          : undefined;
    if (half !== undefined) ranges[network] = half;
  }
  return ranges;
}

/** Every bridge gateway address of a lease (Mesos and Docker halves, IPv4 and IPv6): where the DNS server also listens. */
function leaseGateways(lease: Lease): string[] {
  const out = new Set<string>();
  for (const n of Object.values(lease.networks)) for (const g of [n.mesosGateway, n.mesosGateway6, n.dockerGateway, n.dockerGateway6]) if (g !== undefined) out.add(g);
  return [...out].sort();
}

/**
 * The VIP tables' nftables: whole replaces through `nft -f`, updates and listings through one
 * running `nft -i` (`cli` lists through `shell`; see firewall/shell.ts for why).
 */
function vipNftOf(cli: NftCli, shell: NftShell): VipNft {
  return {
    // A whole replace comes first (start, drift, failure): the shell starts alongside it.
    apply: (script) => {
      shell.warm();
      return cli.apply(script);
    },
    listRaw: () => cli.listRaw(),
    update: (script) => shell.run(script),
    close: () => shell.close(),
  };
}

/** Where the TCP API's token lives: api.tokenFile, else <dataDir>/api.token. */
export function apiTokenPath(config: DaemonConfig): string {
  return config.api.tokenFile === '' ? join(config.dataDir, 'api.token') : config.api.tokenFile;
}

export interface DaemonOptions {
  logger?: Logger;
  /** A kernel backend to use instead of netlink (tests). */
  kernel?: Kernel;
  /** An nftables backend to use instead of the `nft` command (tests); false: no nftables at all. */
  firewall?: FirewallBackend | false;
  version?: string;
  /** Runs before each component starts, with its name (tests inject start failures here). */
  beforeStart?: (component: string) => void;
  /** A Docker Engine API to use instead of the socket in `docker.socketPath` (tests). */
  docker?: DockerApi;
  /**
   * nftables for the VIP tables instead of the `nft` command (tests); false: no VIP rules.
   * Default: the `nft` command, unless `firewall` is given (a test with a fake firewall gets no VIP rules).
   */
  vipNft?: VipNft | false;
  /**
   * What became of the build's V8 code cache when this process started (src/cli/code-cache.ts:
   * used, missing, stale, rejected, unreadable); absent when not run from the bundle. Logged at
   * start and exported as `lashup_daemon_code_cache_used`: a cache V8 rejects (another Node, other
   * flags) costs every start about 100 ms of CPU, with nothing else to show it.
   */
  codeCache?: string;
}

export interface DaemonStats {
  startedAtMs: number;
  releases: number;
  /** Releases refused because the agent may still be running (alive, suspect, or within the grace period). */
  releasesRefused: number;
  /** 1 when this process started from the build's code cache, else 0 (see DaemonOptions.codeCache). */
  codeCacheUsed: number;
}

export class Daemon {
  readonly stats: DaemonStats = { startedAtMs: Date.now(), releases: 0, releasesRefused: 0, codeCacheUsed: 0 };
  readonly logger: Logger;
  readonly version: string;
  /** Prometheus metrics: histograms the components feed, process metrics, the stats' exposition. */
  readonly metrics = new DaemonMetrics();
  private readonly runner: ComponentRunner;
  private readonly leaveListeners = new Set<() => void>();
  private readonly backend = createApiBackend(this);
  /** This agent's tasks from the API, CNI and Docker, published by the DNS component. */
  private readonly localTasks = new LocalTasks();
  /** VIP declarations refused where they came in (API, CNI, Docker labels), by code (lashup_vips_refused_declarations_total). */
  private readonly vipRefusals: Record<string, number> = {};
  /**
   * The daemon's one running `nft -i` (started at its first use): VIP updates, and the VIP and
   * firewall tables' listings, so that no listing forks the daemon (see firewall/shell.ts).
   */
  private readonly nftShell = new NftShell();
  private readonly readinessLatch = new ReadinessLatch(() => ({
    role: this.config.role,
    seeds: this.config.seeds.length,
    liveMembers: this.parts.node?.membership.liveCount ?? 0,
    leaseHeld: this.lease !== undefined,
    dataplane: this.config.role === 'agent' && this.config.dataplane.enabled,
    kernelConverged: this.parts.reconciler?.stats().converged === true,
  }));
  private parts: {
    node?: LashupNode;
    kernel?: Kernel;
    reconciler?: Reconciler;
    overlayAgent?: OverlayAgent;
    allocationView?: AllocationView;
    rowAdmission?: OwnedRowsAdmission;
    firewall?: FirewallSyncer;
    cni?: CniService;
    conflists?: ConflistKeeper;
    api?: ApiServer;
  } = {};

  private constructor(
    readonly config: DaemonConfig,
    private readonly options: DaemonOptions,
  ) {
    this.logger = options.logger ?? silentLogger();
    this.version = options.version ?? LASHUP_VERSION;
    this.runner = new ComponentRunner(this.logger);
    this.stats.codeCacheUsed = options.codeCache === 'used' ? 1 : 0;
  }

  /** Starts the role's components in order; on a failure, stops those that started and throws a ComponentStartError. */
  static async start(config: DaemonConfig, options: DaemonOptions = {}): Promise<Daemon> {
    const daemon = new Daemon(config, options);
    await daemon.runner.start(daemon.components(), options.beforeStart);
    daemon.logger.info(
      {
        name: config.name,
        role: config.role,
        api: `${config.api.host}:${daemon.api.port}`,
        components: daemon.runner.names(),
        ...(options.codeCache === undefined ? {} : { codeCache: options.codeCache }),
      },
      'lashup daemon started',
    );
    const cacheWarning = codeCacheWarning(options.codeCache);
    if (cacheWarning !== undefined) daemon.logger.warn({ code: cacheWarning.code, codeCache: options.codeCache }, cacheWarning.message);
    return daemon;
  }

  get node(): LashupNode {
    return this.parts.node as LashupNode;
  }
  get kernel(): Kernel | undefined {
    return this.parts.kernel;
  }
  get reconciler(): Reconciler | undefined {
    return this.parts.reconciler;
  }
  get overlayAgent(): OverlayAgent | undefined {
    return this.parts.overlayAgent;
  }
  get allocationView(): AllocationView | undefined {
    return this.parts.allocationView;
  }
  get rowAdmission(): OwnedRowsAdmission | undefined {
    return this.parts.node?.rowAdmission ?? this.parts.rowAdmission;
  }
  get firewall(): FirewallSyncer | undefined {
    return this.parts.firewall;
  }
  get cni(): CniService | undefined {
    return this.parts.cni;
  }
  get conflists(): ConflistKeeper | undefined {
    return this.parts.conflists;
  }
  get api(): ApiServer {
    return this.parts.api as ApiServer;
  }

  /**
   * Whether the daemon is ready (joined; agents: leased and the kernel programmed), latched at the
   * first time it was: what systemd is told (`READY=1`) and `GET /v1/status` shows.
   */
  readiness(): Readiness & { readyAtMs: number | undefined } {
    return this.readinessLatch.check(Date.now());
  }

  /** The lease this agent holds. */
  get lease(): Lease | undefined {
    return this.parts.node?.lease?.current;
  }

  /** The components of this node's role, in start order. */
  private components(): Component[] {
    const { config } = this;
    const agent = config.role === 'agent' && config.dataplane.enabled;
    const list = [this.nodeComponent()];
    if (agent) list.push(this.dataplaneComponent(), this.overlayComponent(), this.firewallComponent());
    if (agent && config.cni.enabled) list.push(this.cniComponent(), this.conflistComponent());
    if (agent && config.docker.enabled) list.push(this.dockerComponent());
    if (config.dns.enabled) list.push(this.dnsComponent());
    list.push(
      vipsComponent({
        config,
        logger: this.logger,
        node: () => this.node,
        nft: this.options.vipNft ?? (this.options.firewall === undefined ? vipNftOf(new NftCli({ table: VIP_TABLE, shell: this.nftShell }), this.nftShell) : false),
        refusedDeclarations: this.vipRefusals,
      }),
    );
    list.push(this.apiComponent());
    return list;
  }

  private nodeComponent(): Component {
    const { config, logger } = this;
    return {
      name: 'node',
      start: async () => {
        this.parts.node = await LashupNode.start({
          name: config.name,
          dataDir: config.dataDir,
          role: config.role,
          underlayIp: config.underlayIp,
          version: this.version,
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
          observeKvPropagationMs: (ms) => this.metrics.kvPropagationSeconds.observe(ms / 1000),
        });
      },
      stop: (leave) => (leave ? this.node.stop() : this.node.kill()),
    };
  }

  private dataplaneComponent(): Component {
    const { config, logger, options } = this;
    return {
      name: 'dataplane',
      start: async () => {
        if (options.kernel === undefined) enableForwarding(logger);
        const kernel = options.kernel ?? (await openNetlinkKernel({ logger: componentLogger(logger, 'netlink') }));
        try {
          const reconciler = new Reconciler({
            kernel,
            clock: new RealClock(),
            logger: componentLogger(logger, 'dataplane'),
            resyncIntervalMs: config.dataplane.resyncIntervalMs,
            observeApplyMs: (ms) => this.metrics.dataplaneApplySeconds.observe(ms / 1000),
          });
          void reconciler.start();
          this.parts.reconciler = reconciler;
        } catch (err) {
          await kernel.close();
          throw err;
        }
        this.parts.kernel = kernel;
      },
      stop: async () => {
        await this.parts.reconciler?.stop();
        await this.parts.kernel?.close();
      },
    };
  }

  private overlayComponent(): Component {
    const { config, logger } = this;
    const unsubscribers: (() => void)[] = [];
    return {
      name: 'overlay',
      start: () => {
        const node = this.node;
        const clock = new RealClock();
        // Other agents' entries are programmed only when they match the masters' allocations.
        const view = new AllocationView({
          path: join(config.dataDir, 'allocations.json'),
          fs: new NodeFs(),
          clock,
          fetch: (callback) => (node.lease === undefined ? callback(undefined, 'no lease client') : node.lease.fetchAllocations(callback)),
          peek: (agent, callback) => (node.lease === undefined ? callback(undefined, 'no lease client') : node.lease.peekAllocation(agent, callback)),
          underlay: (agent) => {
            const member = node.membership.member(agent);
            return member === undefined ? undefined : node.meta(member.meta)?.underlayIp;
          },
          refreshIntervalMs: config.ipam.leaseCheckIntervalMs,
          minRefreshMs: 100,
          ...(node.identity === undefined ? {} : { verifier: node.identity.verifier }),
          ...(node.identity === undefined || node.masterIds === undefined
            ? {}
            : { announcements: { masterIdentity: (name: string) => node.masterIds?.pinned(name), verifier: node.identity.verifier } }),
          logger: componentLogger(logger, 'allocations'),
        });
        this.parts.allocationView = view;
        // The masters announce what they grant through the store: a new agent's allocation
        // usually arrives before its entry does (see keyspace/allocations.ts).
        unsubscribers.push(
          node.kv.subscribe(
            (key) => key === ALLOCATIONS_KEY,
            (change) => view.announcementsChanged(change.old, change.new),
          ),
        );
        if (node.identity !== undefined) {
          // Other members' writes over an agent's own rows are refused in this agent's store
          // too (not only left unprogrammed), so it never serves them to anyone.
          // This agent's own allocation is its lease: the view may never have fetched it (its
          // own entry is not checked against the view, so nothing asks for it).
          const own = (): Lease | undefined => node.lease?.current;
          const admission = new OwnedRowsAdmission(
            {
              byAgent: (agent) => (agent === config.name ? own() : undefined) ?? view.byAgent(agent),
              byVtep: (vtepIp) => (own()?.vtepIp === vtepIp ? own() : undefined) ?? view.byVtep(vtepIp),
              contested: (agent) => {
                if (agent !== config.name) view.contested(agent);
              },
            },
            node.identity.verifier,
          );
          node.kv.setAdmission(admission);
          this.parts.rowAdmission = admission;
          // A refusal may rest on a stale allocation (a release not learnt yet): check the held
          // writes again as soon as the allocations change.
          unsubscribers.push(view.onChange(() => node.kv.readmit()));
        }
        const agent = new OverlayAgent({
          name: config.name,
          underlayIp: config.underlayIp,
          kv: node.kv,
          reconciler: this.parts.reconciler as Reconciler,
          overlay: node.overlayConfig,
          clock,
          authority: view,
          alive: (agent) => {
            const state = node.membership.member(agent)?.state;
            return state !== 'dead' && state !== 'left';
          },
          ...(node.identity === undefined ? {} : { signer: node.identity.signer }),
          logger: componentLogger(logger, 'overlay'),
          onOwnEntryMissing: () => node.lease?.confirm(),
        });
        view.start();
        agent.start();
        this.parts.overlayAgent = agent;
        unsubscribers.push(
          node.membership.on((event) => {
            if (event.type !== 'conflict') agent.memberChanged(event.member.name);
          }),
          node.onLease((lease) => agent.setLease(lease)),
          node.onLeaseConfirmed(() => agent.republish()),
          node.onLeaseLost(() => agent.leaseLost()),
        );
      },
      stop: () => {
        for (const u of unsubscribers.splice(0)) u();
        this.parts.overlayAgent?.stop();
        this.parts.allocationView?.stop();
        this.parts.node?.kv.setAdmission(undefined);
      },
    };
  }

  /**
   * nftables: the isolation between overlay networks and the masquerade, following the overlay
   * configuration in use (a policy change the masters publish applies at once, without a
   * restart) and put back when someone else changes lashup's tables; removed when the agent
   * leaves.
   */
  private firewallComponent(): Component {
    const { config, logger, options } = this;
    let unsubscribe: (() => void) | undefined;
    const policy = async (): Promise<unknown> => {
      const syncer = this.parts.firewall;
      if (syncer === undefined) throw new NotFoundError('LASHUP_ERR_NO_FIREWALL', `${config.name} manages no nftables tables (nftables is disabled)`);
      const dropped = await syncer.readCounters().catch(() => syncer.stats.dropped);
      return { networks: networkPolicies(this.node.overlayConfig.current), dropped, rules: syncer.desiredScript ?? null, converged: syncer.stats.converged };
    };
    return {
      name: 'firewall',
      start: () => {
        if (options.firewall === false) return;
        const backend = options.firewall ?? new NftCli({ shell: this.nftShell });
        const syncer = new FirewallSyncer({ backend, clock: new RealClock(), resyncIntervalMs: config.dataplane.firewallResyncIntervalMs, logger: componentLogger(logger, 'firewall') });
        unsubscribe = this.node.overlayConfig.subscribe((overlay) => syncer.setDesired(firewallRuleset(overlay, { masquerade: config.dataplane.masquerade })));
        syncer.start();
        this.parts.firewall = syncer;
      },
      stop: async (leave) => {
        unsubscribe?.();
        const syncer = this.parts.firewall;
        if (syncer === undefined) return;
        if (!leave) await syncer.stop();
        else await syncer.remove().catch((err: unknown) => logger.error({ err: err instanceof Error ? err.message : String(err) }, 'lashup nftables tables could not be removed'));
        // The VIPs' stop closes it too; whichever stops last leaves no shell behind.
        this.nftShell.close();
      },
      stats: () => (this.parts.firewall === undefined ? undefined : { ...this.parts.firewall.stats, shellStarts: this.nftShell.starts, shellListingFailures: this.nftShell.listingFailures }),
      routes: () => [
        {
          method: 'GET',
          pattern: '/v1/firewall',
          handler: () => {
            const syncer = this.parts.firewall;
            if (syncer === undefined) throw new NotFoundError('LASHUP_ERR_NO_FIREWALL', `${config.name} manages no nftables tables (nftables is disabled)`);
            return { table: FIREWALL_TABLE, desired: syncer.desiredScript ?? null, stats: syncer.stats };
          },
        },
        { method: 'GET', pattern: '/v1/policy', handler: () => policy() },
      ],
    };
  }

  /**
   * The Docker networks of the lease in the local Docker daemon (see src/docker): kept while
   * the agent holds a lease, removed when it loses it (released), their usage published in
   * the store next to the CNI usage. A missing daemon is waited for, never an error.
   */
  private dockerComponent(): Component {
    const { config, logger, options } = this;
    const unsubscribers: (() => void)[] = [];
    let keeper: DockerNetworkKeeper | undefined;
    return {
      name: 'docker',
      start: () => {
        const node = this.node;
        const api = options.docker ?? new DockerEngine({ socketPath: config.docker.socketPath, timeoutMs: config.docker.timeoutMs });
        const k = new DockerNetworkKeeper({
          api,
          clock: new RealClock(),
          agent: config.name,
          resyncIntervalMs: config.docker.resyncIntervalMs,
          logger: componentLogger(logger, 'docker'),
          onUsage: (network, usage) => publishDockerUsage(node.kv, network, config.name, usage, node.identity?.signer),
          onTasks: (tasks) => this.localTasks.set('docker', tasks),
        });
        keeper = k;
        let lease: Lease | undefined;
        const update = (): void => void k.setDesired(lease === undefined ? [] : desiredDockerNetworks(lease, node.overlayConfig.current.mtu));
        unsubscribers.push(
          node.onLease((l) => {
            lease = l;
            update();
          }),
          node.onLeaseLost(() => {
            lease = undefined;
            update();
          }),
          node.overlayConfig.subscribe(() => update()),
        );
        void k.start();
      },
      stop: () => {
        for (const u of unsubscribers.splice(0)) u();
        keeper?.stop();
      },
      stats: () => keeper?.stats,
      routes: () => [
        {
          method: 'GET',
          pattern: '/v1/docker',
          handler: () => ({ stats: keeper?.stats ?? null, conflicts: keeper?.conflicts ?? [] }),
        },
      ],
    };
  }

  /**
   * Names (see src/dns): the task catalog follows the store's `tasks` rows; the DNS server
   * answers from it on every node. Agents publish their own tasks, given by orchestrators through
   * `PUT /v1/tasks/{framework}/{task}?ip=...`. A server that cannot bind is logged and left out:
   * the overlay does not stop for names.
   */
  private dnsComponent(): Component {
    const { config, logger } = this;
    const log = componentLogger(logger, 'dns');
    const catalog = new TaskCatalog();
    let server: DnsServer | undefined;
    let unsubscribe: (() => void) | undefined;
    const stats = { listening: false, listenFailures: 0, gatewaysPending: 0 };
    let stopped = false;
    const local = this.localTasks;
    /** Tasks registered through the API, by framework/task (the API's own source of `local`). */
    const own = new Map<string, Omit<PublishedTask, 'source'>>();
    let unsubscribeLocal: (() => void) | undefined;
    let unsubscribeLease: (() => void) | undefined;
    let unsubscribeMembership: (() => void) | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    /** Whether an agent's records are withheld: membership declares it failed (dns.withholdFailed). */
    const down = (agent: string): boolean => config.dns.withholdFailed && this.node.membership.member(agent)?.state === 'dead';
    const publish = (): void => {
      if (config.role !== 'agent') return;
      publishTasks(this.node.kv, config.name, { agentIp: config.underlayIp, tasks: local.all() }, this.node.identity?.signer);
    };
    const setApiTasks = (): void => local.set('api', [...own.values()]);
    const agentOnly = (): void => {
      if (config.role !== 'agent') throw new ConflictError('LASHUP_ERR_NOT_AN_AGENT', `${config.name} is a master; tasks are registered on the agent they run on`);
    };
    const taskArg = (value: string | undefined, what: string): string => {
      if (value === undefined || !TASK_NAME.test(value)) throw new BadRequestError(`${what} ${JSON.stringify(value)} is not valid; expected 1-63 letters, digits, ".", "_" or "-"`);
      return value;
    };
    return {
      name: 'dns',
      start: async () => {
        const node = this.node;
        const rebuild = (): void => {
          const rows = readTasks(node.kv);
          catalog.replace(new Map([...rows].map(([agent, row]) => [agent, row.tasks.map((t) => ({ ...t, agentIp: row.agentIp }))])));
          // Named VIPs (`<name>.<framework>.l4lb.<zone>`): the ones a task declares that the masters gave an address.
          // Addresses outside the VIP ranges are refused (readVipAddresses), as the VIP rules refuse them.
          const addresses = readVipAddresses(node.kv, validateOverlayConfig(node.overlayConfig.current)).table;
          catalog.replaceVips(
            declaredNamedVips(rows).flatMap((v) => {
              const a = addresses.get(v.key);
              return a === undefined ? [] : [{ name: v.name, framework: v.framework, ...a }];
            }),
          );
          if (server !== undefined) server.stats.records = catalog.size;
          // The tasks registered through the API, as this agent's row holds them: a restart
          // keeps them (the CNI and Docker sources are read again from their own state).
          const mine = rows.get(config.name);
          if (!restored && mine !== undefined) {
            restored = true;
            for (const t of mine.tasks) if (t.source === 'api' && !own.has(`${t.framework}/${t.task}`)) own.set(`${t.framework}/${t.task}`, t);
            setApiTasks();
          }
        };
        let restored = false;
        unsubscribe = node.kv.subscribe((key) => key === TASKS_KEY || key === VIP_ADDRESSES_KEY, rebuild);
        rebuild();
        unsubscribeLocal = local.subscribe(publish);
        publish();
        const upstreams = config.dns.upstreams.length > 0 ? config.dns.upstreams : systemResolvers().filter((ip) => !config.dns.listen.includes(ip));
        const s = new DnsServer({
          listen: config.dns.listen,
          port: config.dns.port,
          zone: config.dns.zone,
          ttlSeconds: config.dns.ttlSeconds,
          catalog,
          down,
          upstreams,
          upstreamTimeoutMs: config.dns.upstreamTimeoutMs,
          logger: log,
        });
        try {
          await s.listen();
          server = s;
          // Cached answers depend on which agents are down: any membership change forgets them.
          unsubscribeMembership = node.membership.on(() => s.invalidate());
          stats.listening = true;
          s.stats.records = catalog.size;
          log.info({ listen: config.dns.listen, port: s.port, zone: config.dns.zone, upstreams }, 'DNS server listening');
          if (config.dns.listenGateways) {
            // The bridges' gateways: bound once the dataplane has given the bridges their
            // addresses, retried every second until then (and after a lease change).
            let gateways: string[] = [];
            const logged = new Set<string>();
            // One pass at a time: a lease change during a retry's binds must not bind an
            // address twice (the second bind failed EADDRINUSE and was reported pending).
            let binding: Promise<void> = Promise.resolve();
            const bindGateways = (): Promise<void> => {
              binding = binding.then(bindPass);
              return binding;
            };
            const bindPass = async (): Promise<void> => {
              if (retryTimer !== undefined) clearTimeout(retryTimer);
              retryTimer = undefined;
              const failed = await s.setExtraListen(gateways);
              stats.gatewaysPending = failed.length;
              for (const f of failed) {
                if (logged.has(f.host)) continue;
                logged.add(f.host);
                log.info({ address: f.host, err: f.error }, 'DNS waits for a bridge gateway address (retried every second)');
              }
              for (const host of logged) if (!failed.some((f) => f.host === host)) logged.delete(host);
              if (failed.length > 0 && !stopped) retryTimer = setTimeout(() => void bindGateways(), 1000);
            };
            unsubscribeLease = node.onLease((lease) => {
              gateways = leaseGateways(lease);
              void bindGateways();
            });
            if (node.lease?.current !== undefined) {
              gateways = leaseGateways(node.lease.current);
              void bindGateways();
            }
          }
        } catch (err) {
          await s.close();
          stats.listenFailures++;
          log.error(
            { code: 'LASHUP_ERR_DNS_LISTEN', err: err instanceof Error ? err.message : String(err), listen: config.dns.listen, port: config.dns.port },
            'the DNS server could not listen; running without it',
          );
        }
      },
      stop: async () => {
        stopped = true;
        if (retryTimer !== undefined) clearTimeout(retryTimer);
        unsubscribe?.();
        unsubscribeLocal?.();
        unsubscribeLease?.();
        unsubscribeMembership?.();
        await server?.close();
      },
      stats: () => ({ ...stats, ...(server?.stats ?? {}) }),
      routes: () => [
        {
          method: 'GET',
          pattern: '/v1/dns',
          // What this node's DNS server answers for a name, and where each address comes from.
          handler: (_params, query) => {
            const name = query.get('name') ?? '';
            if (name.length === 0 || name.length > 253) throw new BadRequestError(`name ${JSON.stringify(name)} is not valid; expected a DNS name of 1 to 253 characters`);
            const zone = config.dns.zone;
            if (!inZone(name, zone)) return { name, zone, inZone: false, forwardedTo: server === undefined ? [] : config.dns.upstreams.length > 0 ? config.dns.upstreams : systemResolvers() };
            const parsed = parseTaskName(name, zone);
            if (parsed === undefined) return { name, zone, inZone: true, answer: 'NXDOMAIN', why: `not <task>.<framework>.containerip|autoip|agentip.${zone}` };
            const v4 = catalog.resolve(parsed.task, parsed.framework, parsed.kind, 4, down);
            const v6 = catalog.resolve(parsed.task, parsed.framework, parsed.kind, 6, down);
            return {
              name,
              zone,
              inZone: true,
              ...parsed,
              answer: v4 === undefined && v6 === undefined ? 'NXDOMAIN' : 'NOERROR',
              A: v4 ?? [],
              AAAA: v6 ?? [],
              sources: catalog
                .sources(parsed.task, parsed.framework)
                .map(({ agent, record }) => ({ agent, agentIp: record.agentIp, ips: record.ips, withheld: down(agent), member: this.node.membership.member(agent)?.state ?? 'unknown' })),
            };
          },
        },
        {
          method: 'GET',
          pattern: '/v1/tasks',
          handler: () => ({ tasks: Object.fromEntries(readTasks(this.node.kv)), dns: server === undefined ? null : { port: server.port, zone: config.dns.zone, listening: server.listening } }),
        },
        {
          method: 'PUT',
          pattern: '/v1/tasks/:framework/:task',
          handler: (params, query) => {
            agentOnly();
            const framework = taskArg(params['framework'], 'framework');
            const task = taskArg(params['task'], 'task');
            const ips = query.getAll('ip');
            const bad = ips.find((ip) => !isIp(ip));
            if (bad !== undefined || ips.length === 0 || ips.length > 16)
              throw new BadRequestError(`ip ${JSON.stringify(bad ?? ips.length)} is not valid; expected 1 to 16 ip= parameters, each an IPv4 or IPv6 address`);
            // VIPs the task backs: vip=/web:80:8080 (named) or vip=1.2.3.4:5000/udp (address), up to MAX_TASK_VIPS.
            const vips = query.getAll('vip');
            if (vips.length > MAX_TASK_VIPS) throw new BadRequestError(`${vips.length} vip= parameters; expected at most ${MAX_TASK_VIPS}`);
            for (const v of vips) {
              try {
                this.checkVip(v);
              } catch (err) {
                if (err instanceof LashupError) throw new ApiError(400, err.code, err.message, err.details);
                throw err;
              }
            }
            own.set(`${framework}/${task}`, { framework, task, ips, ...(vips.length === 0 ? {} : { vips }) });
            setApiTasks();
            return { framework, task, ips, vips };
          },
        },
        {
          method: 'DELETE',
          pattern: '/v1/tasks/:framework/:task',
          handler: (params) => {
            agentOnly();
            const removed = own.delete(`${taskArg(params['framework'], 'framework')}/${taskArg(params['task'], 'task')}`);
            if (removed) setApiTasks();
            return { removed };
          },
        },
      ],
    };
  }

  /**
   * Checks a VIP declaration where it comes in (API, CNI): parsed, and an address VIP outside
   * the overlay's subnets and the named VIPs' range of the configuration in use. A refusal is
   * counted by code and thrown (a VipError naming the value).
   */
  private checkVip(text: string): void {
    const current = this.node.overlayConfig.current;
    const spec = validateOverlayConfig(current);
    try {
      validateVipDeclaration(text, { overlaySubnets: current.networks.flatMap((n) => [n.subnet, n.subnet6].filter((x): x is string => x !== undefined)), vipRanges: [spec.vip, spec.vip6] });
    } catch (err) {
      const code = err instanceof LashupError ? err.code : 'LASHUP_ERR_INTERNAL';
      this.vipRefusals[code] = (this.vipRefusals[code] ?? 0) + 1;
      throw err;
    }
  }

  /** The resolver of a CNI container on `network`: the DNS server on its bridge gateway (dns.listenGateways), or none. */
  private containerResolvers(network: string): string[] {
    const { config } = this;
    const lease = this.lease;
    const gateway = lease !== undefined && config.dns.enabled && config.dns.listenGateways ? mesosRanges(lease)[network]?.gateway : undefined;
    return gateway === undefined ? [] : [gateway];
  }

  private cniComponent(): Component {
    const { config, logger } = this;
    return {
      name: 'cni',
      start: async () => {
        const cni = new CniService({
          agent: config.name,
          socketPath: config.cni.socketPath,
          leasesPath: join(config.dataDir, 'cni-leases.json'),
          logger: componentLogger(logger, 'cni'),
          resolvers: (network) => this.containerResolvers(network),
          checkVip: (text) => this.checkVip(text),
        });
        await cni.listen();
        cni.startSweeping();
        this.parts.cni = cni;
      },
      stop: () => this.parts.cni?.close(),
    };
  }

  /** The per-network CNI configuration files, and the CNI service's ranges, from the lease. */
  private conflistComponent(): Component {
    const { config, logger } = this;
    let unsubscribe: (() => void) | undefined;
    let leased: NextTurn | undefined;
    return {
      name: 'conflists',
      start: () => {
        const cni = this.parts.cni as CniService;
        const node = this.node;
        const keeper = new ConflistKeeper({ dir: config.cni.confDir, socketPath: config.cni.socketPath, mtu: config.overlay.mtu, logger: componentLogger(logger, 'cni') });
        keeper.start();
        this.parts.conflists = keeper;
        // This agent's container address usage per network, published when it changes, so that
        // schedulers and operators see exhaustion cluster-wide (`/v1/overlay/{network}/usage`).
        const publishUsage = (): void => {
          for (const network of cni.pool.networks()) {
            const used = cni.pool.used(network);
            const total = cni.pool.capacity(network);
            publishCniUsage(node.kv, network, config.name, { used, total, exhausted: used >= total }, node.identity?.signer);
          }
        };
        // Named attachments (task names from CNI args or CNI_ARGS) are this agent's CNI tasks.
        const cniTasks = (): void =>
          this.localTasks.set(
            'cni',
            cni.pool
              .list()
              .flatMap((a) =>
                a.task === undefined || a.framework === undefined ? [] : [{ framework: a.framework, task: a.task, ips: [a.address], ...(a.vips === undefined ? {} : { vips: a.vips }) }],
              ),
          );
        cni.onChange = () => {
          publishUsage();
          cniTasks();
        };
        cniTasks();
        // A new lease's configuration files and ranges are written in a later turn (next-turn.ts
        // says why): the files are fsynced, the slowest of the lease listeners.
        let lease: Lease | undefined;
        const apply = nextTurn(() => {
          if (lease === undefined) return;
          const ranges = mesosRanges(lease);
          keeper.setNetworks(Object.keys(ranges), (network) => this.containerResolvers(network));
          cni.setRanges(ranges);
          publishUsage();
        });
        leased = apply;
        unsubscribe = node.onLease((l) => {
          lease = l;
          apply.request();
        });
      },
      stop: () => {
        unsubscribe?.();
        leased?.cancel();
        this.parts.conflists?.stop();
      },
    };
  }

  private apiComponent(): Component {
    const { config, logger } = this;
    return {
      name: 'api',
      start: async () => {
        const api = new ApiServer({
          host: config.api.host,
          port: config.api.port,
          tcp: config.api.tcp,
          token: loadOrCreateToken(apiTokenPath(config)),
          socketPath: config.api.socketPath,
          socketMode: config.api.socketGroup === '' ? 0o600 : 0o660,
          ...(config.api.socketGroup === '' ? {} : { socketGid: groupId(config.api.socketGroup) }),
          backend: this.backend,
          logger: componentLogger(logger, 'api'),
          routes: this.runner.routes(),
          ui: config.api.ui,
        });
        this.parts.api = api;
        await api.listen();
      },
      stop: () => this.parts.api?.close(),
    };
  }

  /** Stats the components report through their contract, by component name, for /metrics. */
  componentStats(): Record<string, object | undefined> {
    return this.runner.stats();
  }

  removeEntries(vtepIp: string): number {
    return removeAgentEntries(this.node.kv, vtepIp);
  }

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

  /** Stops in reverse order; `leave` says goodbye to the cluster first (not a failure) and removes lashup's nftables tables. */
  async stop(leave = true): Promise<void> {
    await this.runner.stop(leave);
    this.logger.info('lashup daemon stopped');
  }
}
