/**
 * What the isolation rules cost on the forwarding path (issue 19), on real kernels (root;
 * network namespaces this benchmark creates and removes): 3 masters and 2 agents with three
 * policed networks (dev lets ops in, prod closed to hosts), one container of `dev` per agent,
 * TCP bulk throughput from a4's container to a5's across the overlay (VXLAN), alternately with
 * lashup's nftables tables in place on both agents and with them deleted (same run, same
 * containers, rounds interleaved so drift of the machine falls on both sides).
 *
 * Each round sends for `SECONDS` seconds through one TCP connection (Node on both ends) and
 * counts the bytes the receiver got. With the rules, every packet of an established connection
 * meets `ct state established,related accept` first, so the figure is mostly the cost of having
 * a filter hook and conntrack at all.
 */
import '../src/polyfills.js';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsCluster, run, type ClusterNode } from '../src/demo/index.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult } from './lib/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = 3;

const overlay = {
  networks: [
    { name: 'dev', subnet: '10.1.0.0/16', prefix: 24, allowFrom: ['ops'] },
    { name: 'prod', subnet: '10.2.0.0/16', prefix: 24, allowHosts: false },
    { name: 'ops', subnet: '10.3.0.0/16', prefix: 24 },
  ],
};

/** Bytes per second from `fromNs` to `toIp` over one TCP connection for SECONDS seconds. */
async function throughput(fromNs: string, toNs: string, toIp: string, port: number): Promise<number> {
  const sink = spawn(
    'ip',
    [
      'netns',
      'exec',
      toNs,
      process.execPath,
      '-e',
      `let n = 0; const s = require('net').createServer((c) => { c.on('data', (d) => (n += d.length)); c.on('end', () => { process.stdout.write(String(n)); process.exit(0); }); }); s.listen(${port});`,
    ],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  let out = '';
  sink.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const done = new Promise<void>((resolve) => sink.once('exit', () => resolve()));
  for (let i = 0; i < 50 && !(await run(['ip', 'netns', 'exec', toNs, 'ss', '-ltn'])).stdout.includes(`:${port}`); i++) await new Promise((r) => setTimeout(r, 50));
  const source = `const c = require('net').connect(${port}, '${toIp}'); const buf = Buffer.alloc(65536); const end = Date.now() + ${SECONDS * 1000}; const pump = () => { while (Date.now() < end) { if (!c.write(buf)) return c.once('drain', pump); } c.end(); }; c.on('connect', pump);`;
  await run(['ip', 'netns', 'exec', fromNs, process.execPath, '-e', source], (SECONDS + 10) * 1000);
  const timer = setTimeout(() => sink.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(timer);
  return Number(out) / SECONDS;
}

const bench: Benchmark = {
  name: 'isolation',
  description: 'TCP throughput between containers on two agents across the overlay, with and without lashup isolation rules (same run, interleaved rounds); real daemons in network namespaces',
  async run({ quick, log }): Promise<BenchResult> {
    if (process.getuid?.() !== 0) throw new Error('the isolation benchmark needs root (it builds network namespaces)');
    const rounds = quick ? 3 : 8;
    const command = [process.execPath, join(here, '..', 'bundle', 'lashup.cjs')];
    // The firewall's resync is pushed far out, so a deleted table stays deleted for its rounds.
    const cluster = await NetnsCluster.create({ agents: 2, command, prefix: 'lxb', overlay, dataplane: { firewallResyncIntervalMs: 3_600_000 } });
    try {
      if (!(await cluster.converge(120_000))) throw new Error('the cluster did not converge');
      const [a4, a5] = ['a4', 'a5'].map((n) => cluster.nodes.get(n) as ClusterNode) as [ClusterNode, ClusterNode];
      const from = await cluster.cni('a4', 'ADD', 'bench-src', 'dev');
      const to = await cluster.cni('a5', 'ADD', 'bench-dst', 'dev');
      if (from.code !== 0 || to.code !== 0) throw new Error(`CNI ADD failed: ${from.stderr} ${to.stderr}`);
      const toIp = ((JSON.parse(to.stdout) as { ips: { address: string }[] }).ips[0]?.address ?? '').split('/')[0] as string;
      // The rules in force, to put back after the rounds without them.
      const scripts = await Promise.all([a4, a5].map(async (a) => (JSON.parse((await cluster.cli(a.name, ['policy'])).stdout) as { rules: string }).rules));
      const setRules = async (on: boolean): Promise<void> => {
        for (const [i, a] of [a4, a5].entries()) {
          if (on) await run(['ip', 'netns', 'exec', a.host.ns, 'sh', '-c', `printf '%s' "$0" | nft -f -`, scripts[i] as string]);
          else await run(['ip', 'netns', 'exec', a.host.ns, 'sh', '-c', 'nft delete table ip lashup; nft delete table ip6 lashup; true']);
          const listed = (await run(['ip', 'netns', 'exec', a.host.ns, 'nft', 'list', 'tables'])).stdout.includes('table ip lashup');
          if (listed !== on) throw new Error(`lashup's tables on ${a.name} are ${listed ? 'present' : 'absent'}, expected ${on ? 'present' : 'absent'}`);
        }
      };
      const withRules: number[] = [];
      const without: number[] = [];
      await throughput(from.ns, to.ns, toIp, 7100); // warm-up
      for (let r = 0; r < rounds; r++) {
        for (const on of r % 2 === 0 ? [true, false] : [false, true]) {
          await setRules(on);
          const bps = await throughput(from.ns, to.ns, toIp, 7101 + r * 2 + (on ? 0 : 1));
          (on ? withRules : without).push(bps);
          log(`round ${r + 1}/${rounds}, rules ${on ? 'on ' : 'off'}: ${round(bps / 1e6)} MB/s`);
        }
      }
      await setRules(true);
      const w = summarize(withRules);
      const o = summarize(without);
      return {
        parameters: {
          agents: 2,
          networks: 3,
          rounds,
          secondsPerRound: SECONDS,
          transport: 'one TCP connection, Node on both ends, 64 KiB writes',
          path: 'container (dev, a4) -> VXLAN -> container (dev, a5)',
        },
        rows: [
          { rules: 'lashup isolation tables', 'MB/s p50': round(w.p50 / 1e6), 'MB/s min': round(w.min / 1e6), 'MB/s max': round(w.max / 1e6) },
          { rules: 'none (tables deleted)', 'MB/s p50': round(o.p50 / 1e6), 'MB/s min': round(o.min / 1e6), 'MB/s max': round(o.max / 1e6) },
        ],
        notes: [
          `throughput with the rules / without, p50: ${round(w.p50 / o.p50)}`,
          'established packets are accepted by the first rule of the forward chain; new connections walk at most one rule per network pair',
        ],
      };
    } finally {
      await cluster.destroy();
    }
  },
};

export default bench;
