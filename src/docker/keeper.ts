/**
 * Keeps the local Docker daemon's lashup networks as the lease calls for, level-triggered like
 * the dataplane: at every resync (and right after the lease changes) the daemon's networks are
 * listed and compared with the desired ones, and what differs is put right:
 *
 * - missing: created;
 * - lashup's, but different (subnet, bridge, options): recreated when no container is attached,
 *   else reported as a conflict (removing it would cut those containers off);
 * - of the same name but not lashup's (no lashup label): never touched, reported;
 * - lashup's, for a network the lease no longer covers: removed when no container is attached,
 *   else reported.
 *
 * A Docker daemon that is absent, restarting or slow only delays this: every request has a
 * timeout, syncs never overlap, and the state (reachable or not) is logged when it changes, not
 * at every attempt. Nothing else in lashup waits for Docker.
 */
import { cidrSize, parseCidr, type Clock, type TimerHandle } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { type DesiredDockerNetwork, dockerNetworkDifferences, dockerNetworkSpec, isLashupNetwork } from './desired.js';
import type { DockerApi, DockerContainer, DockerEventStream, DockerNetwork } from './engine.js';
import { DockerError } from './errors.js';
import { type DockerTask, dockerTasks, TASK_LABEL } from './tasks.js';

export interface DockerConflict {
  network: string;
  /** `foreign`: a network of that name that lashup did not create; `in-use`: lashup's, different from the lease, with containers attached; `stale-in-use`: lashup's, no longer in the lease, with containers attached. */
  kind: 'foreign' | 'in-use' | 'stale-in-use';
  detail: string;
}

export interface DockerUsage {
  /** Containers attached (each holds one address of the half). */
  used: number;
  /** Addresses of the Docker half a container can get (IPv4: all but network, gateway and broadcast). */
  total: number;
}

export interface DockerKeeperStats {
  /** 1 when the last sync reached the Docker daemon. */
  reachable: boolean;
  syncs: number;
  /** Syncs that found no Docker daemon answering (absent, stopped, hung past the timeout). */
  unreachable: number;
  /** Syncs that failed part way (a request failed or timed out). */
  syncFailures: number;
  created: number;
  /** lashup's networks removed and made again because they differed from the lease. */
  recreated: number;
  removed: number;
  /** Conflicts now (see DockerConflict). */
  conflicts: number;
  /** lashup's networks present as desired, now. */
  networks: number;
  /** Containers attached to each of lashup's Docker networks, at the last sync. */
  used: Record<string, number>;
  /** Addresses each network's Docker half offers containers. */
  capacity: Record<string, number>;
  /** Named tasks (labelled containers on lashup's networks) at the last sync. */
  tasks: number;
  /** Labelled containers left out at the last sync: their labels are not valid (logged once each). */
  badLabels: number;
  /** Events from the daemon's stream that started a sync. */
  events: number;
  /** Lines of the daemon's events stream that were not events (skipped). */
  badEvents: number;
}

export interface DockerKeeperOptions {
  api: DockerApi;
  clock: Clock;
  /** This agent's name (the label value on its networks). */
  agent: string;
  resyncIntervalMs: number;
  logger?: Logger;
  /** Told the usage of each desired network after every sync that read it. */
  onUsage?: (network: string, usage: DockerUsage) => void;
  /**
   * Told the named tasks (labels, see tasks.ts) of the containers on lashup's networks after
   * every sync that read them. When set, the keeper also follows the daemon's events, so a
   * container's start or stop is seen at once rather than at the next resync.
   */
  onTasks?: (tasks: DockerTask[]) => void;
}

/** Addresses a container may get in `subnet` (IPv4: network, gateway and broadcast excluded). */
export function dockerHalfCapacity(subnet: string): number {
  const cidr = parseCidr(subnet, false);
  if (cidr === undefined) return 0;
  const size = cidrSize(cidr);
  const usable = cidr.family === 4 ? size - 3n : size - 2n;
  return usable > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Math.max(0, Number(usable));
}

export class DockerNetworkKeeper {
  readonly stats: DockerKeeperStats = {
    reachable: false,
    syncs: 0,
    unreachable: 0,
    syncFailures: 0,
    created: 0,
    recreated: 0,
    removed: 0,
    conflicts: 0,
    networks: 0,
    used: {},
    capacity: {},
    tasks: 0,
    badLabels: 0,
    events: 0,
    badEvents: 0,
  };
  conflicts: DockerConflict[] = [];
  private desired: DesiredDockerNetwork[] = [];
  private timer: TimerHandle | undefined;
  private running = false;
  private readonly idleWaiters: (() => void)[] = [];
  private again = false;
  private stopped = false;
  /** Whether the daemon was reachable at the last attempt (undefined before the first). */
  private lastReachable: boolean | undefined;
  private lastFailure = '';
  private stream: DockerEventStream | undefined;
  /** Brings the open stream's count of bad lines into the stats (at every event and sync). */
  private countBadEvents: () => void = () => undefined;
  /** Refusals already logged (container and label value), so a bad label is logged once. */
  private readonly refusalsLogged = new Set<string>();

  constructor(private readonly options: DockerKeeperOptions) {}

  start(): Promise<void> {
    this.stopped = false;
    return this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.stream?.close();
    this.stream = undefined;
    this.timer?.cancel();
    this.timer = undefined;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** The networks the lease calls for (empty: none, and lashup's networks are removed). */
  setDesired(desired: DesiredDockerNetwork[]): Promise<void> {
    this.desired = desired;
    return this.kick();
  }

  /**
   * Syncs now (or right after the sync in progress), then every resync interval. Resolves when
   * no sync is running or due (tests await it; the daemon does not).
   */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.running) {
      this.again = true;
      return idle;
    }
    this.timer?.cancel();
    this.timer = undefined;
    this.running = true;
    void this.sync().finally(() => {
      this.running = false;
      if (!this.stopped && this.again) {
        this.again = false;
        void this.kick();
        return;
      }
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      if (this.stopped) return;
      this.timer = this.options.clock.setTimer(this.options.resyncIntervalMs, () => {
        this.timer = undefined;
        void this.kick();
      });
    });
    return idle;
  }

  private async sync(): Promise<void> {
    const { api, logger } = this.options;
    this.stats.syncs++;
    try {
      await api.ping();
    } catch (err) {
      this.stats.unreachable++;
      this.reachability(false, err);
      return;
    }
    this.reachability(true);
    this.countBadEvents();
    this.follow();
    let networks: DockerNetwork[];
    try {
      networks = await api.listNetworks();
    } catch (err) {
      this.stats.syncFailures++;
      this.failed('list the Docker networks', err);
      return;
    }
    const conflicts: DockerConflict[] = [];
    let ok = 0;
    let failed = false;
    const wanted = new Set(this.desired.map((d) => d.name));
    for (const d of this.desired) {
      try {
        const result = await this.keep(
          d,
          networks.filter((n) => n.Name === d.name),
        );
        if (result === undefined) ok++;
        else conflicts.push(result);
      } catch (err) {
        failed = true;
        this.failed(`keep Docker network ${d.name}`, err);
      }
    }
    for (const n of networks) {
      if (!isLashupNetwork(n) || wanted.has(n.Name)) continue;
      try {
        const inspected = await api.inspectNetwork(n.Id);
        const attached = Object.keys(inspected.Containers ?? {}).length;
        if (attached > 0) {
          conflicts.push({ network: n.Name, kind: 'stale-in-use', detail: `the lease no longer covers ${n.Name}, but ${attached} container(s) are attached; it is removed once they are gone` });
          continue;
        }
        await api.removeNetwork(n.Id);
        this.stats.removed++;
        logger?.info({ network: n.Name }, 'Docker network removed: the lease no longer covers it');
      } catch (err) {
        failed = true;
        this.failed(`remove Docker network ${n.Name}`, err);
      }
    }
    this.stats.networks = ok;
    if (this.options.onTasks !== undefined) {
      try {
        this.tasks(await api.listContainers(TASK_LABEL), wanted);
      } catch (err) {
        failed = true;
        this.failed('list the labelled Docker containers', err);
      }
    }
    // One failure count per sync, whatever part of it failed.
    if (failed) this.stats.syncFailures++;
    else this.lastFailure = '';
    for (const name of Object.keys(this.stats.used)) {
      if (wanted.has(name)) continue;
      delete this.stats.used[name];
      delete this.stats.capacity[name];
    }
    this.report(conflicts);
  }

  /** Puts one desired network right; returns a conflict when it cannot. */
  private async keep(d: DesiredDockerNetwork, sameName: DockerNetwork[]): Promise<DockerConflict | undefined> {
    const { api, logger, agent } = this.options;
    const foreign = sameName.find((n) => !isLashupNetwork(n));
    if (foreign !== undefined) {
      return {
        network: d.name,
        kind: 'foreign',
        detail: `a Docker network named ${d.name} (${foreign.Id.slice(0, 12)}, driver ${foreign.Driver}) was not created by lashup; it is left alone. Remove it to let lashup create its own`,
      };
    }
    const mine = sameName[0];
    if (mine === undefined) {
      await api.createNetwork(dockerNetworkSpec(d, agent));
      this.stats.created++;
      logger?.info({ network: d.name, bridge: d.bridge, subnet: d.subnet, subnet6: d.subnet6 }, 'Docker network created');
      // A network just made holds no container.
      this.usage(d.name, { used: 0, total: this.capacity(d) });
      return undefined;
    }
    const inspected = await api.inspectNetwork(mine.Id);
    const differences = dockerNetworkDifferences(inspected, d);
    const attached = Object.keys(inspected.Containers ?? {}).length;
    if (differences.length === 0) {
      this.usage(d.name, { used: attached, total: this.capacity(d) });
      return undefined;
    }
    if (attached > 0) {
      return { network: d.name, kind: 'in-use', detail: `differs from the lease (${differences.join('; ')}) but ${attached} container(s) are attached; it is recreated once they are gone` };
    }
    await api.removeNetwork(mine.Id);
    await api.createNetwork(dockerNetworkSpec(d, agent));
    this.stats.recreated++;
    logger?.warn({ network: d.name, differences }, 'Docker network differed from the lease; recreated');
    this.usage(d.name, { used: 0, total: this.capacity(d) });
    return undefined;
  }

  private tasks(containers: DockerContainer[], networks: ReadonlySet<string>): void {
    const { tasks, refused } = dockerTasks(containers, networks);
    this.stats.tasks = tasks.length;
    this.stats.badLabels = refused.length;
    const now = new Set<string>();
    for (const r of refused) {
      const key = `${r.containerId}/${r.label}=${r.value ?? ''}`;
      now.add(key);
      if (!this.refusalsLogged.has(key)) this.options.logger?.warn({ code: 'LASHUP_ERR_DOCKER_TASK_LABEL', container: r.containerId, label: r.label, value: r.value }, r.message);
    }
    this.refusalsLogged.clear();
    for (const key of now) this.refusalsLogged.add(key);
    this.options.onTasks?.(tasks);
  }

  /**
   * Follows the daemon's events while it is reachable (re-opened at the next sync after the
   * stream ends): a container started, stopped, or (dis)connected starts a sync at once.
   */
  private follow(): void {
    if (this.options.onTasks === undefined || this.stream !== undefined || this.stopped) return;
    const stream = this.options.api.events((event) => {
      const container = event.Type === 'container' && ['start', 'die', 'destroy', 'rename', 'update'].includes(event.Action ?? '');
      const network = event.Type === 'network' && ['connect', 'disconnect'].includes(event.Action ?? '');
      this.countBadEvents();
      if (!container && !network) return;
      this.stats.events++;
      void this.kick();
    });
    this.stream = stream;
    let counted = 0;
    const countBad = (): void => {
      if (stream.badLines === counted) return;
      if (counted === 0) this.options.logger?.warn({ code: 'LASHUP_ERR_DOCKER_BAD_EVENT' }, 'the Docker events stream sent lines that are not events; skipped (the resync covers them)');
      this.stats.badEvents += stream.badLines - counted;
      counted = stream.badLines;
    };
    this.countBadEvents = countBad;
    void stream.done.then(() => {
      countBad();
      if (this.stream === stream) this.stream = undefined;
    });
  }

  private capacity(d: DesiredDockerNetwork): number {
    return dockerHalfCapacity((d.subnet ?? d.subnet6) as string);
  }

  private usage(network: string, usage: DockerUsage): void {
    this.stats.used[network] = usage.used;
    this.stats.capacity[network] = usage.total;
    this.options.onUsage?.(network, usage);
  }

  private reachability(reachable: boolean, err?: unknown): void {
    this.stats.reachable = reachable;
    if (this.lastReachable === reachable) return;
    this.lastReachable = reachable;
    if (reachable) this.options.logger?.info('Docker daemon reachable: keeping its lashup networks');
    else this.options.logger?.info({ err: describe(err) }, 'no Docker daemon answers; Docker networks wait for one (checked every resync)');
  }

  private failed(what: string, err: unknown): void {
    const text = `${what}: ${describe(err)}`;
    if (text === this.lastFailure) return;
    this.lastFailure = text;
    this.options.logger?.warn({ code: err instanceof DockerError ? err.code : 'LASHUP_ERR_INTERNAL', err: describe(err) }, `could not ${what}`);
  }

  private report(conflicts: DockerConflict[]): void {
    const before = JSON.stringify(this.conflicts);
    this.conflicts = conflicts;
    this.stats.conflicts = conflicts.length;
    if (JSON.stringify(conflicts) !== before && conflicts.length > 0) this.options.logger?.warn({ conflicts }, 'Docker networks in conflict with the lease');
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
