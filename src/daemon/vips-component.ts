/**
 * VIPs in the daemon (see src/vips), one component on every node:
 *
 *   masters   the leader gives every named VIP a task declares an address (the allocator's
 *             Raft log: never two names on one address) and frees it a grace period after the
 *             last declaring task left; it publishes the table at `vip-addresses`
 *   agents    turn the store's VIPs and backends into the `lashup_vips` nftables tables, again
 *             at once on every change of the tasks, of the table, or of membership (a backend on
 *             an agent declared failed leaves every agent's rules in the time membership takes)
 *   both      `GET /v1/vips`: every VIP, its address, backends and (agents) per-backend counters
 */
import { RealClock } from '../common/index.js';
import { dnsLabel } from '../dns/index.js';
import { decodeResult, encodeCommand, validateOverlayConfig, type OverlaySpec, type VipAssignment } from '../ipam/index.js';
import { TASKS_KEY, VIP_ADDRESSES_KEY, publishVipAddresses, readTasks, readVipAddresses } from '../keyspace/index.js';
import { componentLogger, type Logger } from '../log/index.js';
import { buildVips, VipAssigner, VipSyncer, vipChainName, vipBackendChainName, type VipCatalog, type VipNft, type VipRuleset } from '../vips/index.js';
import type { Component } from './component.js';
import type { DaemonConfig } from './config.js';
import type { LashupNode } from './node.js';

/** Backend changes kept for `GET /v1/vips?changes=1`. */
const MAX_CHANGES = 512;

export interface VipsComponentDeps {
  config: DaemonConfig;
  logger: Logger;
  node: () => LashupNode;
  /** nftables for the VIP tables (agents); false: the agent programs no VIP. */
  nft: VipNft | false;
  /** Declarations refused where they came in (API, CNI, Docker labels), by code; kept by the daemon. */
  refusedDeclarations: Record<string, number>;
}

export interface VipsStats {
  /** VIPs programmed on this agent, and their backends (all VIPs summed). */
  vips: number;
  backends: number;
  /** Named VIPs declared but without an address from the masters yet. */
  pending: number;
  /** Declarations left out (bad port, name, an address VIP inside an overlay or the VIP range), by code, as of the last rebuild. */
  badDeclarations: Record<string, number>;
  /** Published addresses refused (outside the VIP ranges). */
  refusedAddresses: number;
  /** Declarations refused where they came in (API, CNI, Docker labels), by code, since start. */
  refusedDeclarations: Record<string, number>;
  /** Masters: named VIPs the allocator holds, assignments and releases proposed, names refused for want of room. */
  allocated: number;
  assignments: number;
  releases: number;
  allocationFailures: number;
  /** Agents: the VIP rules' syncer (applies whole and incremental, drift, failures). */
  rules?: object;
}

export function vipsComponent(deps: VipsComponentDeps): Component {
  const { config } = deps;
  const log = componentLogger(deps.logger, 'vips');
  const stats: VipsStats = {
    vips: 0,
    backends: 0,
    pending: 0,
    badDeclarations: {},
    refusedDeclarations: deps.refusedDeclarations,
    refusedAddresses: 0,
    allocated: 0,
    assignments: 0,
    releases: 0,
    allocationFailures: 0,
  };
  const unsubscribes: (() => void)[] = [];
  let catalog: VipCatalog = { services: [], declared: [], pending: [], problems: [] };
  let syncer: VipSyncer | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let assigner: VipAssigner | undefined;
  /** Whether this master led at the last check: a new leader starts its own grace clocks. */
  let leading = false;
  let proposing = false;
  let specCache: { config: unknown; spec: OverlaySpec } | undefined;
  let again = false;
  /**
   * Backends as the kernel holds them (`<vip> > <backend>` -> since when, wall ms), and the last
   * MAX_CHANGES comings and goings: when a change reached this agent's rules, for operators
   * and for the benchmark that times a backend change to every agent.
   */
  const programmed = new Map<string, number>();
  const changes: { atMs: number; wantedAtMs: number; vip: string; backend: string; change: 'added' | 'removed' }[] = [];
  /** When this agent's desired VIPs last changed (wall ms): the store's news arrived then. */
  let wantedAtMs = 0;
  const onApplied = (ruleset: VipRuleset): void => {
    const atMs = Date.now();
    const next = new Set(ruleset.counters.map((c) => `${c.vip} > ${c.backend}`));
    const record = (key: string, change: 'added' | 'removed'): void => {
      const [vip, backend] = key.split(' > ') as [string, string];
      changes.push({ atMs, wantedAtMs, vip, backend, change });
      if (changes.length > MAX_CHANGES) changes.splice(0, changes.length - MAX_CHANGES);
    };
    for (const key of next)
      if (!programmed.has(key)) {
        programmed.set(key, atMs);
        record(key, 'added');
      }
    for (const key of [...programmed.keys()])
      if (!next.has(key)) {
        programmed.delete(key);
        record(key, 'removed');
      }
  };
  /** Problems already logged (each declaration once, while it stays bad). */
  let logged = new Set<string>();

  const node = (): LashupNode => deps.node();
  /** Whether an agent's backends are left out: failed or gone, or suspected (vips.ejectSuspect). */
  const down = (agent: string): boolean => {
    const state = node().membership.member(agent)?.state;
    return state === 'dead' || state === 'left' || (state === 'suspect' && config.vips.ejectSuspect);
  };

  /** The overlay's container subnets, and the VIP ranges, from the configuration in use (validated when it was taken). */
  const ranges = (): { overlaySubnets: string[]; vip: OverlaySpec['vip']; vip6: OverlaySpec['vip6'] } => {
    const current = node().overlayConfig.current;
    if (specCache?.config !== current) specCache = { config: current, spec: validateOverlayConfig(current) };
    const { vip, vip6 } = specCache.spec;
    return { overlaySubnets: current.networks.flatMap((n) => [n.subnet, n.subnet6].filter((x): x is string => x !== undefined)), vip, vip6 };
  };

  /** This agent's container subnets, one per bridge: where a client and a backend meet without the agent routing (hairpin). */
  const hairpinSubnets = (): string[] => {
    const lease = node().lease?.current;
    if (lease === undefined) return [];
    return Object.values(lease.networks)
      .flatMap((n) => [n.mesos, n.docker, n.mesos6, n.docker6])
      .filter((x): x is string => x !== undefined)
      .sort();
  };

  const rebuild = (): void => {
    const kv = node().kv;
    const r = ranges();
    const addresses = readVipAddresses(kv, r);
    stats.refusedAddresses = addresses.refused.length;
    catalog = buildVips(readTasks(kv), addresses.table, { down, overlaySubnets: r.overlaySubnets, vipRanges: [r.vip, r.vip6] });
    stats.vips = catalog.services.length;
    stats.backends = catalog.services.reduce((sum, s) => sum + s.backends.length, 0);
    stats.pending = catalog.pending.length;
    const bad: Record<string, number> = {};
    const seen = new Set<string>();
    for (const p of catalog.problems) {
      bad[p.code] = (bad[p.code] ?? 0) + 1;
      const key = `${p.agent}/${p.framework}/${p.task}/${p.value}`;
      seen.add(key);
      if (!logged.has(key)) log.warn({ code: p.code, agent: p.agent, framework: p.framework, task: p.task, value: p.value }, `${p.message}; this VIP is left out`);
    }
    logged = seen;
    stats.badDeclarations = bad;
    if (syncer?.setDesired(catalog.services, hairpinSubnets()) === true) wantedAtMs = Date.now();
    assign();
  };

  /** Leader only: asks the allocator for what the declared VIPs lack and frees what outlived its grace period, one proposal at a time. */
  const assign = (): void => {
    const allocator = node().allocator;
    if (allocator === undefined || !config.vips.enabled) return;
    if (allocator.raft.role !== 'leader') {
      leading = false;
      return;
    }
    // A new leader (or this one again after a lost term) starts its own grace clocks: it never
    // releases a VIP sooner than releaseGraceMs after it saw it undeclared.
    if (!leading || assigner === undefined) assigner = new VipAssigner(config.vips.releaseGraceMs);
    leading = true;
    if (proposing) {
      again = true;
      return;
    }
    const table = allocator.state.vipTable();
    stats.allocated = Object.keys(table).length;
    publishVipAddresses(node().kv, table);
    const plan = assigner.plan(catalog.declared, Object.keys(table), Date.now());
    const command = plan.assign.length > 0 ? encodeCommand({ op: 'vip-assign', vips: plan.assign }) : plan.release.length > 0 ? encodeCommand({ op: 'vip-release', vips: plan.release }) : undefined;
    if (command === undefined) return;
    proposing = true;
    allocator.raft.propose(command, (error, result) => {
      proposing = false;
      let exhausted: string[] = [];
      if (error !== null) log.debug({ err: error.message }, 'VIP proposal not committed; the next check asks again');
      else if (result !== undefined) {
        const decoded = decodeResult(result);
        if (plan.assign.length > 0) {
          stats.assignments += plan.assign.length;
          exhausted = decoded.ok ? (decoded.value as VipAssignment).exhausted : plan.assign;
          if (exhausted.length > 0) {
            stats.allocationFailures += exhausted.length;
            log.error(
              { code: 'LASHUP_ERR_VIP_EXHAUSTED', vips: exhausted.slice(0, 20), range: node().overlayConfig.current.vipSubnet ?? '11.0.0.0/8' },
              'the named VIP range has no free address for these VIPs; they get none until others are released',
            );
          }
        } else stats.releases += plan.release.length;
        const table = allocator.state.vipTable();
        publishVipAddresses(node().kv, table);
        stats.allocated = Object.keys(table).length;
      }
      // Names the range had no room for are asked for again at the next tick, not in a loop.
      if (again && exhausted.length === 0 && error === null) {
        again = false;
        assign();
      }
    });
  };

  return {
    name: 'vips',
    start: () => {
      const n = node();
      const agent = config.role === 'agent';
      if (agent && deps.nft !== false && config.vips.enabled) {
        syncer = new VipSyncer({ nft: deps.nft, clock: new RealClock(), resyncIntervalMs: config.dataplane.firewallResyncIntervalMs, logger: log, onApplied });
        syncer.start();
      }
      if (n.allocator !== undefined) {
        timer = setInterval(() => assign(), config.vips.assignIntervalMs);
        timer.unref?.();
      }
      unsubscribes.push(n.kv.subscribe((key) => key === TASKS_KEY || key === VIP_ADDRESSES_KEY, rebuild));
      unsubscribes.push(n.membership.on(() => rebuild()));
      unsubscribes.push(n.onLease(() => rebuild()));
      unsubscribes.push(n.overlayConfig.subscribe(() => rebuild()));
      rebuild();
    },
    stop: async (leave) => {
      for (const u of unsubscribes.splice(0)) u();
      if (timer !== undefined) clearInterval(timer);
      if (syncer !== undefined) {
        if (!leave) await syncer.stop();
        else await syncer.remove().catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, 'the VIP tables could not be removed'));
      }
      if (deps.nft !== false) deps.nft.close?.();
    },
    stats: () => ({ ...stats, ...(syncer === undefined ? {} : { rules: syncer.stats }) }),
    routes: () => [
      {
        method: 'GET',
        pattern: '/v1/vips',
        // ?counters=0: without listing the tables (no nft run; counters as of the last resync).
        // ?changes=1: with the last backend comings and goings in this agent's rules (&since=MS:
        // only those at or after that wall-clock time, ms since the epoch).
        handler: async (_params, query) => {
          if (syncer !== undefined && query.get('counters') !== '0') await syncer.resync();
          const counters = syncer?.counters ?? {};
          const applied = syncer?.current?.script;
          return {
            vips: catalog.services.map((s) => {
              const chain = vipChainName(s);
              return {
                ...(s.name === undefined ? {} : { name: s.name, dns: `${s.name.split('.')[0]}.${dnsLabel(s.name.slice(s.name.indexOf('.') + 1))}.l4lb.${config.dns.zone}` }),
                address: s.address,
                port: s.port,
                protocol: s.protocol,
                backends: s.backends.map((b) => ({ ...b, connections: syncer === undefined ? null : (counters[vipBackendChainName(chain, b)] ?? 0) })),
              };
            }),
            pending: catalog.pending,
            problems: catalog.problems,
            rules:
              syncer === undefined
                ? null
                : {
                    converged: syncer.stats.converged,
                    programmed: applied !== undefined,
                    stats: syncer.stats,
                    ...(query.get('changes') === '1' ? { changes: changes.filter((c) => c.atMs >= Number(query.get('since') ?? 0)) } : {}),
                  },
          };
        },
      },
    ],
  };
}
