/**
 * A lashup cluster in network namespaces: 3 masters and N agents, each a real `lashup run`
 * process in its own host namespace on a switch namespace (192.0.2.0/24), container namespaces
 * on the agents' m-dcos bridges. Used by `lashup demo` and `npm run bench -- e2e`. Everything it
 * creates it removes in `destroy()`; it ends only the processes it started.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lease } from '../ipam/index.js';
import { generateClusterKey } from '../net/index.js';
import { Dockerd } from './dockerd.js';
import { eventually, must, run, TestNet, type TestHost } from './netns.js';

export interface ClusterNode {
  name: string;
  host: TestHost;
  dir: string;
  child?: ChildProcess;
  startedAtMs: number;
  log: string;
}

export interface Container {
  ns: string;
  ip: string;
  agent: string;
}

export interface NetnsClusterOptions {
  /** Agents started with the cluster. */
  agents: number;
  /** Extra host namespaces for agents started later. */
  spareHosts?: number;
  /** argv that runs the lashup CLI, e.g. [node, dist/src/cli/main.js]. */
  command: string[];
  /** Namespace prefix (lxd for the demo, lxb for benchmarks). */
  prefix: string;
  /** Daemon log level (stderr is kept, the last 20 kB per node). Default warn. */
  logLevel?: string;
  /** Overlay configuration for every node (default DC/OS's; `restart` may change it). */
  overlay?: Record<string, unknown>;
  /** The `dataplane` section of every node's config (defaults otherwise). */
  dataplane?: Record<string, unknown>;
  /** The `dns` section of every node's config (default: upstreams ['127.0.0.1:9'], nothing answers there). */
  dns?: Record<string, unknown>;
  /**
   * Called once the namespaces exist and before the first daemon starts, with each node's name
   * and namespace (a benchmark starts its `ip monitor` there, so that it sees the first route).
   */
  beforeStart?: (namespaces: ReadonlyMap<string, string>) => void;
}

/** Where the reference CNI plugins live (Debian's containernetworking-plugins). */
export const CNI_PLUGIN_DIR = '/usr/lib/cni';

/** The repository's bin/ (holds lashup-ipam), found upwards from this module. */
function repoBin(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, 'bin', 'lashup-ipam'))) return join(d, 'bin');
    d = dirname(d);
  }
  throw new Error('bin/lashup-ipam not found above this module');
}

export interface CniOutcome {
  code: number;
  stdout: string;
  stderr: string;
  /** The container's namespace. */
  ns: string;
}

export class NetnsCluster {
  readonly nodes = new Map<string, ClusterNode>();
  readonly containers: Container[] = [];
  private readonly key = generateClusterKey();
  private readonly cniResults = new Map<string, unknown>();
  private destroyed = false;

  private constructor(
    readonly net: TestNet,
    readonly root: string,
    private readonly options: NetnsClusterOptions,
  ) {}

  /** Builds the namespaces and starts 3 masters and the agents (not waiting for them). */
  static async create(options: NetnsClusterOptions): Promise<NetnsCluster> {
    if (options.agents < 1 || options.agents > 200) throw new RangeError(`agents = ${options.agents}; expected 1 to 200`);
    const net = await TestNet.create({ hosts: 3 + options.agents + (options.spareHosts ?? 0), prefix: options.prefix });
    const cluster = new NetnsCluster(net, mkdtempSync(join(tmpdir(), 'lashup-cluster-')), options);
    try {
      // Masters m1-m3 on hosts 1-3, agents a4... on the hosts of the same number.
      const hosts = [...[1, 2, 3].map((i) => [`m${i}`, i] as const), ...Array.from({ length: options.agents }, (_, i) => [`a${4 + i}`, 4 + i] as const)];
      options.beforeStart?.(new Map(hosts.map(([name, i]) => [name, net.host(i).ns])));
      for (const [name, i] of hosts) cluster.start(name, i);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  get agents(): ClusterNode[] {
    return [...this.nodes.values()].filter((n) => n.name.startsWith('a'));
  }

  /**
   * Restarts node `name` (SIGTERM, a graceful leave, then a new process on the same host),
   * with `overlay` as the overlay configuration of every node started from now on, when given:
   * restarting the masters with a new overlay is how an operator publishes a changed one.
   */
  async restart(name: string, overlay?: Record<string, unknown>): Promise<ClusterNode> {
    const node = this.nodes.get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    if (overlay !== undefined) this.options.overlay = overlay;
    await this.signal(name, 'SIGTERM');
    return this.start(name, node.host.index);
  }

  /** Starts a Docker daemon of the node's own in its namespace, on the socket its config names. */
  startDockerd(name: string): Promise<Dockerd> {
    const node = this.nodes.get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return Dockerd.start(node.host.ns, join(node.dir, 'docker'));
  }

  /** Writes the node's config and starts its daemon (again, when it ran before). */
  start(name: string, hostIndex: number): ClusterNode {
    const host = this.net.host(hostIndex);
    const dir = join(this.root, name);
    mkdirSync(dir, { recursive: true });
    const config = {
      name,
      role: name.startsWith('m') ? 'master' : 'agent',
      underlayIp: host.ip,
      dataDir: join(dir, 'data'),
      masters: ['m1', 'm2', 'm3'],
      seeds: ['192.0.2.1:62502', '192.0.2.2:62502', '192.0.2.3:62502'],
      cluster: { keys: [this.key] },
      membership: { profile: 'local' },
      cni: { socketPath: join(dir, 'cni.sock'), confDir: join(dir, 'net.d') },
      // A dockerd of the node's own (startDockerd) listens here; without one the agent waits.
      docker: { socketPath: Dockerd.socketPathFor(join(dir, 'docker')), resyncIntervalMs: 2000 },
      // Each namespace has a loopback of its own; upstreams are the test's business (none by default).
      dns: { upstreams: ['127.0.0.1:9'], ...this.options.dns },
      // Unix sockets live in the file system every namespace shares: one per node.
      api: { socketPath: join(dir, 'api.sock') },
      ...(this.options.overlay === undefined ? {} : { overlay: this.options.overlay }),
      ...(this.options.dataplane === undefined ? {} : { dataplane: this.options.dataplane }),
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
    const node: ClusterNode = this.nodes.get(name) ?? { name, host, dir, startedAtMs: 0, log: '' };
    const child = spawn('ip', ['netns', 'exec', host.ns, ...this.options.command, 'run', '--config', join(dir, 'config.json')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LASHUP_LOG_LEVEL: this.options.logLevel ?? 'warn' },
    });
    child.stderr?.on('data', (c: Buffer) => {
      node.log = (node.log + c.toString()).slice(-20_000);
    });
    node.child = child;
    node.startedAtMs = performance.timeOrigin + performance.now();
    this.nodes.set(name, node);
    return node;
  }

  /** The lease an agent stored, if any. */
  leaseOf(name: string): Lease | undefined {
    const node = this.nodes.get(name);
    const path = node === undefined ? '' : join(node.dir, 'data', 'lease.json');
    if (!existsSync(path)) return undefined;
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as Lease;
    } catch {
      return undefined;
    }
  }

  /** `to`'s dcos subnet (or its first IPv4 subnet, without dcos), from its stored lease. */
  private subnetOf(to: string): string | undefined {
    const networks = this.leaseOf(to)?.networks ?? {};
    return networks['dcos']?.subnet ?? Object.values(networks).find((n) => n.subnet !== undefined)?.subnet;
  }

  /** The IPv4 destinations of lashup's routes (proto 76) on `from`, as `ip route` prints them. */
  private async lashupRoutes(from: string): Promise<Set<string>> {
    const host = this.nodes.get(from)?.host;
    if (host === undefined) return new Set();
    const lines = (await run(['ip', '-n', host.ns, 'route', 'show'])).stdout.split('\n');
    // A line starts with its destination, after the type for routes that are not unicast.
    const destination = (line: string): string => line.replace(/^(blackhole|unreachable|prohibit|throw) /, '').split(' ')[0] as string;
    return new Set(lines.filter((line) => / proto 76( |$)/.test(line)).map(destination));
  }

  /** Whether `from` has lashup's route to `to`'s dcos subnet (or its first IPv4 subnet, without dcos). */
  async routeTo(from: string, to: string): Promise<boolean> {
    const subnet = this.subnetOf(to);
    return subnet !== undefined && (await this.lashupRoutes(from)).has(subnet);
  }

  /**
   * Waits until every agent has a lease and routes to every other; false after `ms`. One route
   * listing per agent and check, not one `ip` per pair: at 16 agents that was up to 240 processes
   * every 100 ms, CPU the benchmarks' formation shared with the daemons it measured.
   */
  async converge(ms: number): Promise<boolean> {
    const names = this.agents.map((a) => a.name);
    return eventually(async () => {
      const subnets = new Map(names.map((n) => [n, this.subnetOf(n)]));
      if ([...subnets.values()].some((s) => s === undefined)) return false;
      for (const from of names) {
        const routes = await this.lashupRoutes(from);
        if (names.some((to) => to !== from && !routes.has(subnets.get(to) as string))) return false;
      }
      return true;
    }, ms);
  }

  /**
   * Runs the reference bridge plugin for a container on `agent`, as a runtime would: the
   * network configuration the daemon wrote (`<confDir>/dcos.conflist`), CNI_PATH holding the
   * reference plugins and lashup-ipam, and `cniArgs` as CNI_ARGS (task names). ADD creates the
   * container namespace first.
   */
  async cni(agent: string, command: 'ADD' | 'DEL' | 'CHECK', containerId: string, network = 'dcos', cniArgs?: string): Promise<CniOutcome> {
    const node = this.nodes.get(agent);
    if (node === undefined) throw new Error(`no node ${agent}`);
    const ns = `${this.net.id}-k-${containerId}`;
    if (command === 'ADD' && !this.containers.some((c) => c.ns === ns)) {
      await must(['ip', 'netns', 'add', ns]);
      this.containers.push({ ns, ip: '', agent });
    }
    // The daemon writes the conflist a turn after it stores the lease, so a caller that waited
    // for the lease alone (converge() on a one-agent cluster) can get here first: wait for the
    // file as runtimes wait for a network configuration (kubelet's NetworkNotReady). Past flake:
    // ENOENT on net.d/dcos.conflist right after converge() in the one-agent CNI test.
    const path = join(node.dir, 'net.d', `${network}.conflist`);
    if (!(await eventually(() => existsSync(path), 30_000))) throw new Error(`${agent} wrote no ${path} within 30 s (is network ${network} in its lease?)`);
    const list = JSON.parse(readFileSync(path, 'utf8')) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
    // CHECK and DEL carry the ADD result as prevResult, as runtimes pass it.
    const prev = this.cniResults.get(containerId);
    const stdin = JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0], ...(command !== 'ADD' && prev !== undefined ? { prevResult: prev } : {}) });
    const env = {
      ...process.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: `/run/netns/${ns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: `${CNI_PLUGIN_DIR}:${repoBin()}`,
      ...(cniArgs === undefined ? {} : { CNI_ARGS: cniArgs }),
    };
    return new Promise((resolve) => {
      const child = execFile('ip', ['netns', 'exec', node.host.ns, join(CNI_PLUGIN_DIR, 'bridge')], { env, timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        if (command === 'ADD' && code === 0) {
          this.cniResults.set(containerId, JSON.parse(stdout) as unknown);
          const ip = ((JSON.parse(stdout) as { ips?: { address: string }[] }).ips?.[0]?.address ?? '').split('/')[0] ?? '';
          const c = this.containers.find((x) => x.ns === ns);
          if (c !== undefined) c.ip = ip;
        }
        resolve({ code, stdout, stderr, ns });
      });
      child.stdin?.end(stdin);
    });
  }

  /** A GET on a node's API through its unix socket (for routes the CLI has no command for, such as /metrics). */
  async apiGet(name: string, path: string): Promise<string> {
    return (await this.api(name, 'GET', path)).body;
  }

  /** A request to a node's API through its unix socket: the status and the body as text. */
  api(name: string, method: string, path: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
    const node = this.nodes.get(name);
    if (node === undefined) return Promise.reject(new Error(`no node ${name}`));
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: join(node.dir, 'api.sock'), method, path, headers: { host: 'localhost' }, timeout: timeoutMs }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} on ${name}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** Sends `signal` to a node's daemon and waits until it exits (SIGKILL after `graceMs`); false when it was not running. */
  async signal(name: string, signal: NodeJS.Signals, graceMs = 15_000): Promise<boolean> {
    const child = this.nodes.get(name)?.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return false;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    return true;
  }

  /** Runs the CLI inside a node's namespace (its API is on that namespace's loopback). */
  cli(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const node = this.nodes.get(name);
    if (node === undefined) return Promise.resolve({ code: 2, stdout: '', stderr: `no node ${name}` });
    return run(['ip', 'netns', 'exec', node.host.ns, ...this.options.command, ...args, '--socket', join(node.dir, 'api.sock')], 30_000);
  }

  /** Stops every daemon (SIGKILL: the namespaces go away with them) and removes everything. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const n of this.nodes.values()) if (n.child !== undefined && n.child.exitCode === null) n.child.kill('SIGKILL');
    for (const c of this.containers) await run(['ip', 'netns', 'del', c.ns]);
    await this.net.destroy();
    rmSync(this.root, { recursive: true, force: true });
  }
}
