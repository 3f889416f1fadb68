/**
 * The overlay end to end (root; network namespaces this benchmark creates and removes): 3
 * masters and N agents as real daemon processes; then, trial after trial, one new agent starts
 * and the benchmark measures the time from its process start until every other agent has
 * programmed the route to its subnet (seen by `ip monitor route` in each agent's namespace).
 * That covers Node start, joining, the lease through Raft, publishing the entry, gossip, route
 * derivation and the kernel write.
 */
import '../src/polyfills.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, NetnsCluster } from '../src/demo/index.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const now = (): number => performance.timeOrigin + performance.now();

interface Monitor {
  child: ChildProcess;
  /** Route lines with their arrival time. */
  lines: { atMs: number; text: string }[];
}

function monitor(ns: string): Monitor {
  const child = spawn('ip', ['-n', ns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const m: Monitor = { child, lines: [] };
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const at = now();
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    for (const text of parts) m.lines.push({ atMs: at, text });
  });
  return m;
}

async function measure(agents: number, trials: number, log: (m: string) => void): Promise<{ samples: number[]; convergeMs: number; failures: string[] }> {
  const command = [process.execPath, join(here, '..', 'src', 'cli', 'main.js')];
  const started = now();
  const cluster = await NetnsCluster.create({ agents, spareHosts: trials, command, prefix: 'lxb' });
  const samples: number[] = [];
  const failures: string[] = [];
  try {
    if (!(await cluster.converge(300_000))) throw new Error(`${agents} agents did not converge within 300 s`);
    const convergeMs = now() - started;
    log(`${agents} agents converged in ${Math.round(convergeMs)} ms`);
    for (let t = 0; t < trials; t++) {
      const existing = cluster.agents.map((a) => a.name);
      const monitors = new Map(existing.map((name) => [name, monitor(cluster.nodes.get(name)?.host.ns as string)]));
      await new Promise((r) => setTimeout(r, 300));
      const name = `n${t}`;
      const node = cluster.start(name, 3 + agents + 1 + t);
      const ok = await eventually(() => {
        const subnet = cluster.leaseOf(name)?.networks['dcos']?.subnet;
        return subnet !== undefined && [...monitors.values()].every((m) => m.lines.some((l) => l.text.startsWith(`${subnet} `) && l.text.includes('proto 76')));
      }, 30_000, 20);
      for (const m of monitors.values()) m.child.kill('SIGTERM');
      if (!ok) {
        failures.push(`trial ${t}: not every agent programmed ${name}'s route within 30 s`);
        continue;
      }
      const subnet = cluster.leaseOf(name)?.networks['dcos']?.subnet as string;
      const last = Math.max(...[...monitors.values()].map((m) => m.lines.find((l) => l.text.startsWith(`${subnet} `))?.atMs ?? Infinity));
      samples.push(last - node.startedAtMs);
      // Let the cluster settle before the next trial.
      await new Promise((r) => setTimeout(r, 500));
    }
    return { samples, convergeMs, failures };
  } finally {
    await cluster.destroy();
  }
}

const bench: Benchmark = {
  name: 'e2e',
  description: 'new agent start -> route programmed on every other agent, real daemons in network namespaces',
  async run({ quick, log }): Promise<BenchResult> {
    if (process.getuid?.() !== 0) throw new Error('the e2e benchmark needs root (it builds network namespaces)');
    const sizes = quick ? [4] : [4, 8, 16];
    const trials = quick ? 3 : 10;
    const rows: Record<string, Cell>[] = [];
    const targets: TargetCheck[] = [];
    const notes: string[] = [];
    for (const agents of sizes) {
      const r = await measure(agents, trials, log);
      const d = summarize(r.samples);
      rows.push({ agents, trials: d.n, 'p50 ms': round(d.p50), 'p99 ms': round(d.p99), 'max ms': round(d.max), 'min ms': round(d.min), 'cluster converge ms': Math.round(r.convergeMs) });
      notes.push(...r.failures.map((f) => `${agents} agents: ${f}`));
      if (agents === 16) targets.push({ name: 'new agent start to routes on all 16 agents (p99)', target: '< 1,000 ms', measured: `${round(d.p99)} ms (p50 ${round(d.p50)} ms)`, met: d.p99 < 1000 && r.failures.length === 0 });
    }
    notes.push('Time starts at the new daemon process spawn (Node start included) and ends when the last existing agent\'s kernel announces the route.');
    return { parameters: { sizes, trialsPerSize: trials, masters: 3, membershipProfile: 'local' }, rows, targets, notes };
  },
};

export default bench;
