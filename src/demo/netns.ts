/**
 * Networks built from network namespaces (see "Test networks" in DESIGN.md), for the kernel
 * tests, `lashup demo` and the end-to-end benchmark.
 *
 * A TestNet is a "switch" namespace holding a Linux bridge, plus one namespace per host, each
 * joined to the bridge by a veth pair whose host end is `eth0` with an underlay address in
 * 192.0.2.0/24 (TEST-NET-1). No namespace has a link to the machine's own namespace, so no
 * packet leaves the machine. Partitions are nftables drop rules inside host namespaces (this
 * kernel has no netem). Everything the net creates is removed by `destroy()`, which tests
 * register with `t.teardown`.
 *
 * Namespace names are `<prefix>-<pid>-<n>-<role>`; `reapStale()` removes those left by processes
 * that died (their pid is gone), and nothing else.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { reserveNeighbourCapacity } from './neighbour-capacity.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with a bounded time; never throws for a non-zero exit. */
export interface RunOptions {
  /** Written to the command's standard input, which is then closed (closed at once without it). */
  input?: string;
  /** The environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a command (bounded by `timeoutMs`) and resolves with its status and output; never rejects.
 * Standard input is always closed: a command that reads it (a CNI plugin, `nft -f -`) would
 * otherwise wait for the time limit.
 */
export function run(argv: readonly string[], timeoutMs = 10_000, options: RunOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const [file, ...args] = argv as [string, ...string[]];
    const child = execFile(file, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, ...(options.env === undefined ? {} : { env: options.env }) }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr: stderr || (error?.message ?? '') });
    });
    // A command that exits without reading its input makes the write fail with EPIPE; its status
    // already tells the outcome.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}

/** Runs a command; throws with its stderr when it fails. */
export async function must(argv: readonly string[], timeoutMs?: number): Promise<string> {
  const result = await run(argv, timeoutMs);
  if (result.code !== 0) throw new Error(`command failed (${result.code}): ${argv.join(' ')}\n${result.stderr}`);
  return result.stdout;
}

/**
 * Polls an I/O probe (a ping, a listing) every `everyMs` until it holds or `ms` passed; true when
 * it held. For real kernels and processes only: simulated tests never wait on wall time.
 */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Removes namespaces left behind by test processes that no longer exist. */
export async function reapStale(prefix = 'lxt'): Promise<string[]> {
  if (!existsSync('/run/netns')) return [];
  const removed: string[] = [];
  for (const name of readdirSync('/run/netns')) {
    const match = new RegExp(`^${prefix}-(\\d+)-`).exec(name);
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    if ((await run(['ip', 'netns', 'del', name])).code === 0) removed.push(name);
  }
  return removed;
}

let netCounter = 0;

export interface TestHost {
  /** Namespace name. */
  readonly ns: string;
  /** Underlay IPv4 address on eth0. */
  readonly ip: string;
  /** Host number, from 1. */
  readonly index: number;
}

export interface TestNetOptions {
  hosts: number;
  /** Namespace name prefix: lxt (tests, the default), lxd (demo), lxb (benchmarks). */
  prefix?: string;
  /** First three octets of the underlay /24. Default 192.0.2 (TEST-NET-1). */
  subnet24?: string;
}

export class TestNet {
  private destroyed = false;

  private constructor(
    readonly id: string,
    readonly switchNs: string,
    readonly hosts: readonly TestHost[],
    private readonly namespaces: string[],
    private readonly releaseNeighbours: () => void,
  ) {}

  /** Builds the switch and `hosts` host namespaces. On failure, removes what it made. */
  static async create(options: TestNetOptions): Promise<TestNet> {
    if (options.hosts < 1 || options.hosts > 250) throw new RangeError(`hosts = ${options.hosts}; expected 1..250`);
    const prefix = options.prefix ?? 'lxt';
    if (!/^[a-z]{2,4}$/.test(prefix)) throw new RangeError(`prefix ${JSON.stringify(prefix)}; expected 2-4 lower-case letters`);
    await reapStale(prefix);
    const releaseNeighbours = reserveNeighbourCapacity(options.hosts);
    const id = `${prefix}-${process.pid}-${netCounter++}`;
    const subnet = options.subnet24 ?? '192.0.2';
    const switchNs = `${id}-sw`;
    const created: string[] = [];
    const hosts: TestHost[] = [];
    try {
      await must(['ip', 'netns', 'add', switchNs]);
      created.push(switchNs);
      await must(['ip', '-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
      await must(['ip', '-n', switchNs, 'link', 'set', 'br0', 'up']);
      for (let i = 1; i <= options.hosts; i++) {
        const ns = `${id}-h${i}`;
        await must(['ip', 'netns', 'add', ns]);
        created.push(ns);
        // The veth pair is born in the switch namespace; its far end moves straight into the host.
        await must(['ip', '-n', switchNs, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
        await must(['ip', '-n', switchNs, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
        await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
        await must(['ip', '-n', ns, 'addr', 'add', `${subnet}.${i}/24`, 'dev', 'eth0']);
        await must(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
        hosts.push({ ns, ip: `${subnet}.${i}`, index: i });
      }
    } catch (err) {
      for (const ns of created.reverse()) await run(['ip', 'netns', 'del', ns]);
      releaseNeighbours();
      throw err;
    }
    return new TestNet(id, switchNs, hosts, created, releaseNeighbours);
  }

  host(index: number): TestHost {
    const host = this.hosts[index - 1];
    if (host === undefined) throw new RangeError(`no host ${index}; this net has ${this.hosts.length}`);
    return host;
  }

  /** Runs a command inside a namespace. */
  exec(ns: string, argv: readonly string[], timeoutMs?: number): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', ns, ...argv], timeoutMs);
  }

  /** One bounded ping (count packets, at most `waitS` seconds each); true when any reply came. */
  async ping(ns: string, address: string, count = 1, waitS = 1): Promise<boolean> {
    const args = ['ping', '-n', '-q', '-c', String(count), '-W', String(waitS)];
    if (address.includes(':')) args.push('-6');
    const result = await this.exec(ns, [...args, address], (count * waitS + 5) * 1000);
    return result.code === 0;
  }

  /** Drops every packet between `host` and the given peer addresses, both ways (nftables). */
  async isolate(host: TestHost, peerIps: readonly string[]): Promise<void> {
    const lines = [
      'table inet lxt_partition {',
      '  chain input { type filter hook input priority -10; policy accept;',
      ...peerIps.map((ip) => `    ip saddr ${ip} drop`),
      '  }',
      '  chain output { type filter hook output priority -10; policy accept;',
      ...peerIps.map((ip) => `    ip daddr ${ip} drop`),
      '  }',
      '}',
    ];
    await this.nftReplace(host, lines.join('\n'));
  }

  /** Removes the partition rules of `host`. */
  async heal(host: TestHost): Promise<void> {
    await this.exec(host.ns, ['nft', 'delete', 'table', 'inet', 'lxt_partition']);
  }

  /** Removes every namespace of this net. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const ns of [...this.namespaces].reverse()) await run(['ip', 'netns', 'del', ns]);
    this.releaseNeighbours();
  }

  /** Names of this net's namespaces that still exist. */
  remaining(): string[] {
    if (!existsSync('/run/netns')) return [];
    const present = new Set(readdirSync('/run/netns'));
    return this.namespaces.filter((ns) => present.has(ns));
  }

  /**
   * Runs an nftables script (`nft -f -`) in `host`'s namespace: one transaction, applied whole or
   * not at all. The partitions here and the lab's fault rules use it.
   */
  nftApply(host: TestHost, script: string): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', host.ns, 'nft', '-f', '-'], 10_000, { input: script });
  }

  private async nftReplace(host: TestHost, ruleset: string): Promise<void> {
    await this.exec(host.ns, ['nft', 'delete', 'table', 'inet', 'lxt_partition']);
    const result = await this.nftApply(host, ruleset);
    if (result.code !== 0) throw new Error(`nft failed in ${host.ns}: ${result.stderr}`);
  }
}
