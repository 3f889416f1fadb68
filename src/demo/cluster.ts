/**
 * A lashup cluster in network namespaces: 3 masters and N agents, each a real `lashup agent`
 * process in its own host namespace on a switch namespace (192.0.2.0/24), container namespaces
 * on the agents' m-dcos bridges. Used by `lashup demo` and `npm run bench -- e2e`. Everything it
 * creates it removes in `destroy()`; it ends only the processes it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lease } from '../ipam/index.js';
import { generateClusterKey } from '../net/index.js';
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
}

export class NetnsCluster {
  readonly nodes = new Map<string, ClusterNode>();
  readonly containers: Container[] = [];
  private readonly key = generateClusterKey();
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
      for (let i = 1; i <= 3; i++) cluster.start(`m${i}`, i);
      for (let i = 0; i < options.agents; i++) cluster.start(`a${4 + i}`, 4 + i);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  get agents(): ClusterNode[] {
    return [...this.nodes.values()].filter((n) => n.name.startsWith('a'));
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
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
    const node: ClusterNode = this.nodes.get(name) ?? { name, host, dir, startedAtMs: 0, log: '' };
    const child = spawn('ip', ['netns', 'exec', host.ns, ...this.options.command, 'agent', '--config', join(dir, 'config.json')], {
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

  /** Whether `from` has lashup's route to `to`'s dcos subnet. */
  async routeTo(from: string, to: string): Promise<boolean> {
    const subnet = this.leaseOf(to)?.networks['dcos']?.subnet;
    const host = this.nodes.get(from)?.host;
    if (subnet === undefined || host === undefined) return false;
    return /proto 76/.test((await run(['ip', '-n', host.ns, 'route', 'show', subnet])).stdout);
  }

  /** Waits until every agent has a lease and routes to every other; false after `ms`. */
  async converge(ms: number): Promise<boolean> {
    const names = this.agents.map((a) => a.name);
    return eventually(async () => {
      if (names.some((n) => this.leaseOf(n) === undefined)) return false;
      for (const from of names) for (const to of names) if (from !== to && !(await this.routeTo(from, to))) return false;
      return true;
    }, ms);
  }

  /** A container namespace on `agent`'s m-dcos bridge, at gateway + `k` of its Mesos half. */
  async addContainer(agent: string, k: number): Promise<Container> {
    const node = this.nodes.get(agent);
    const half = this.leaseOf(agent)?.networks['dcos'];
    if (node === undefined || half?.mesosGateway === undefined || half.mesos === undefined) throw new Error(`${agent} has no lease yet`);
    const gw = half.mesosGateway;
    const ip = gw.replace(/\.(\d+)$/, (_, last: string) => `.${Number(last) + k}`);
    const ns = `${this.net.id}-c${node.host.index}-${k}`;
    const hostEnd = `c${node.host.index}-${k}`;
    await must(['ip', 'netns', 'add', ns]);
    const container = { ns, ip, agent };
    this.containers.push(container);
    await must(['ip', '-n', node.host.ns, 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await must(['ip', '-n', node.host.ns, 'link', 'set', hostEnd, 'master', 'm-dcos', 'up']);
    await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await must(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    await must(['ip', '-n', ns, 'addr', 'add', `${ip}/${half.mesos.split('/')[1]}`, 'dev', 'eth0']);
    await must(['ip', '-n', ns, 'route', 'add', 'default', 'via', gw]);
    return container;
  }

  /** Runs the CLI inside a node's namespace (its API is on that namespace's loopback). */
  cli(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const host = this.nodes.get(name)?.host;
    if (host === undefined) return Promise.resolve({ code: 2, stdout: '', stderr: `no node ${name}` });
    return run(['ip', 'netns', 'exec', host.ns, ...this.options.command, ...args], 30_000);
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
