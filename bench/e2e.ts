/**
 * The overlay end to end (root; network namespaces this benchmark creates and removes): 3
 * masters and N agents as real daemon processes, timed from the first spawn until every agent
 * routes to every other; then, trial after trial, one new agent starts and the benchmark
 * measures the time from its process start, and from its lease, until every other agent has
 * programmed the route to its subnet (seen by `ip monitor route` in each agent's namespace).
 * Spawn -> routes covers Node start, joining, the lease through Raft, publishing the entry,
 * gossip, route derivation and the kernel write; lease -> routes only the last four.
 */
import '../src/polyfills.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, NetnsCluster, run } from '../src/demo/index.js';
import { daemonCommand, stopForProfiles } from './lib/daemon-command.js';
import { idleCpuMsPerSec as idleCpuRate, treeCpuMs } from './lib/proc-cpu.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';

const now = (): number => performance.timeOrigin + performance.now();
/** The quiet window after formation in which the daemons' idle CPU is read, ms. */
const IDLE_WINDOW_MS = 10_000;

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

/**
 * When the last of the routes every agent holds to every other agent's subnet was programmed:
 * for each pair, the last announcement of that route (a route put back after a removal counts
 * from when it came back), the latest over all pairs. Call once `converge` saw them all.
 */
function lastRouteProgrammedMs(cluster: NetnsCluster, monitors: ReadonlyMap<string, Monitor>): number {
  let last = 0;
  for (const [from, m] of monitors) {
    for (const to of monitors.keys()) {
      if (to === from) continue;
      const subnet = cluster.leaseOf(to)?.networks['dcos']?.subnet;
      const seen = m.lines.filter((l) => subnet !== undefined && l.text.startsWith(`${subnet} `) && l.text.includes('proto 76'));
      // A route the monitor missed (it should not): fall back to "not known", which fails loudly below.
      last = Math.max(last, seen.at(-1)?.atMs ?? Number.POSITIVE_INFINITY);
    }
  }
  if (!Number.isFinite(last)) throw new Error('the route monitors missed a route that the poll found; formation time unknown');
  return last;
}

/** LASHUP_BENCH_DEBUG=1: what an agent that lacks a route holds (a developer's aid). */
async function diagnose(cluster: NetnsCluster, agent: string, subnet: string | undefined): Promise<string> {
  const ns = cluster.nodes.get(agent)?.host.ns as string;
  const get = async (path: string): Promise<string> => (await run(['ip', 'netns', 'exec', ns, 'curl', '-s', '-m', '3', `http://127.0.0.1:62080${path}`])).stdout;
  const kv = await get('/v1/kv/overlay%2Fdcos');
  const metrics = (await get('/metrics'))
    .split('\n')
    .filter((l) => /lashup_(libp2p|peers|anti_entropy_rounds|kv_remote)/.test(l))
    .join(' ');
  const route = subnet === undefined ? '' : (await run(['ip', '-n', ns, 'route', 'show', subnet])).stdout.trim();
  return `${agent}: entry in store: ${subnet !== undefined && kv.includes(subnet)}; route: ${route || 'none'}; ${metrics}`;
}

interface Trial {
  /** New agent's process spawn -> its route on every other agent's kernel, ms. */
  spawnMs: number;
  /** Its lease stored (granted) -> its route on every other agent's kernel, ms. */
  leaseMs: number;
  /** Spawn -> lease stored: process start, joining, the Raft round trip. */
  spawnToLeaseMs: number;
}

interface Measured {
  trials: Trial[];
  /** First daemon spawned -> every agent has a lease and routes to every other. */
  formationMs: number;
  failures: string[];
  /** The daemons' CPU in a quiet window, ms per second (all process trees). */
  idleCpuMsPerSec: number;
  /** CPU of all daemons (the new one's included) from a trial's spawn to its last route, above idle, ms. */
  joinCpuMs: number;
  /** Of which the new daemon's own (its start, joining, lease, publishing), ms. */
  joinNewCpuMs: number;
}

async function measure(agents: number, trials: number, log: (m: string) => void): Promise<Measured> {
  const command = daemonCommand();
  const daemonLog = process.env['LASHUP_BENCH_DAEMON_LOG'];
  // Every agent's routes watched from before the first spawn: the formation ends when the last
  // route was programmed (the kernel's announcement), not when the poll below noticed it. The
  // poll runs `ip route` in each namespace one after another every 100 ms: it saw the end
  // 60-225 ms late at 16 agents (three runs) and 560 ms late at 32 (one).
  const formationMonitors = new Map<string, Monitor>();
  const stopMonitors = (): void => {
    for (const m of formationMonitors.values()) m.child.kill('SIGTERM');
  };
  const cluster = await NetnsCluster.create({
    agents,
    spareHosts: trials,
    command,
    prefix: 'lxb',
    ...(daemonLog === undefined ? {} : { logLevel: daemonLog }),
    beforeStart: (namespaces) => {
      for (const [name, ns] of namespaces) if (name.startsWith('a')) formationMonitors.set(name, monitor(ns));
    },
  }).catch((err: unknown) => {
    stopMonitors();
    throw err;
  });
  const results: Trial[] = [];
  const failures: string[] = [];
  try {
    // Counted from the first daemon's spawn (the namespaces are built before it).
    const firstSpawn = Math.min(...[...cluster.nodes.values()].map((n) => n.startedAtMs));
    const converged = await cluster.converge(300_000);
    const detectedMs = now() - firstSpawn;
    stopMonitors();
    if (!converged) throw new Error(`${agents} agents did not converge within 300 s`);
    const formationMs = lastRouteProgrammedMs(cluster, formationMonitors) - firstSpawn;
    log(`3 masters + ${agents} agents formed, all routes programmed, in ${Math.round(formationMs)} ms (the poll saw it at ${Math.round(detectedMs)} ms)`);
    // The daemons' CPU (process trees, from /proc): a quiet window, then the trials (each one
    // a new daemon joining; its own tree counted too), so that a join's cost on the cluster
    // can be told from the idle cost.
    const pids = (): (number | undefined)[] => [...cluster.nodes.values()].map((n) => n.child?.pid);
    const idleCpuMsPerSec = await idleCpuRate(pids(), IDLE_WINDOW_MS);
    const trialsStartMs = now();
    let trialsCpuMs = 0;
    let trialsNewCpuMs = 0;
    for (let t = 0; t < trials; t++) {
      const existing = cluster.agents.map((a) => a.name);
      const monitors = new Map(existing.map((name) => [name, monitor(cluster.nodes.get(name)?.host.ns as string)]));
      await new Promise((r) => setTimeout(r, 300));
      const name = `n${t}`;
      const before = treeCpuMs(pids());
      const node = cluster.start(name, 3 + agents + 1 + t);
      const ok = await eventually(
        () => {
          const subnet = cluster.leaseOf(name)?.networks['dcos']?.subnet;
          return subnet !== undefined && [...monitors.values()].every((m) => m.lines.some((l) => l.text.startsWith(`${subnet} `) && l.text.includes('proto 76')));
        },
        30_000,
        20,
      );
      for (const m of monitors.values()) m.child.kill('SIGTERM');
      const usedCpuMs = treeCpuMs(pids()) - before;
      const newCpuMs = treeCpuMs([node.child?.pid]);
      if (!ok) {
        const subnet = cluster.leaseOf(name)?.networks['dcos']?.subnet;
        const lacking = [...monitors].filter(([, m]) => subnet === undefined || !m.lines.some((l) => l.text.startsWith(`${subnet} `))).map(([n]) => n);
        failures.push(`trial ${t}: not every agent programmed ${name}'s route within 30 s (subnet ${subnet ?? 'not leased'}; lacking: ${lacking.join(', ')})`);
        if (process.env['LASHUP_BENCH_DEBUG'] === '1') {
          log(`${name}'s log: ${node.log.slice(-3000)}`);
          for (const n of lacking.slice(0, 3)) log(await diagnose(cluster, n, subnet));
        }
        continue;
      }
      const subnet = cluster.leaseOf(name)?.networks['dcos']?.subnet as string;
      const last = Math.max(...[...monitors.values()].map((m) => m.lines.find((l) => l.text.startsWith(`${subnet} `))?.atMs ?? Infinity));
      // The agent stores its lease (write + rename) the moment the masters grant it, before
      // publishing its entry; the file's time is on the wall clock, the monitors' on this
      // process's monotonic one: convert.
      const leaseWallMs = statSync(join(node.dir, 'data', 'lease.json')).mtimeMs;
      const leaseAtMs = leaseWallMs - (Date.now() - now());
      if (process.env['LASHUP_BENCH_DEBUG'] === '1') {
        // Where a join's time goes: when each agent programmed the route, from the lease.
        const arrivals = [...monitors].map(([n, m]) => `${n} ${Math.round((m.lines.find((l) => l.text.startsWith(`${subnet} `))?.atMs ?? Number.NaN) - leaseAtMs)}`);
        log(`trial ${t}: spawn->lease ${Math.round(leaseAtMs - node.startedAtMs)} ms; route programmed, ms after the lease: ${arrivals.join(', ')}`);
      }
      trialsCpuMs += usedCpuMs;
      trialsNewCpuMs += newCpuMs;
      results.push({ spawnMs: last - node.startedAtMs, leaseMs: last - leaseAtMs, spawnToLeaseMs: leaseAtMs - node.startedAtMs });
      // Let the cluster settle before the next trial.
      await new Promise((r) => setTimeout(r, 500));
    }
    // Each trial's window runs from the spawn until every route was seen.
    const joinWallMs = results.reduce((sum, r) => sum + r.spawnMs, 0);
    const joinCpuMs = results.length > 0 ? (trialsCpuMs - (idleCpuMsPerSec * joinWallMs) / 1000) / results.length : Number.NaN;
    const joinNewCpuMs = results.length > 0 ? trialsNewCpuMs / results.length : Number.NaN;
    log(
      `daemons' CPU: idle ${Math.round(idleCpuMsPerSec)} ms/s; a join ${Math.round(joinCpuMs)} ms above idle, of which the new daemon ${Math.round(joinNewCpuMs)} ms (trials took ${Math.round(now() - trialsStartMs)} ms)`,
    );
    return { trials: results, formationMs, failures, idleCpuMsPerSec, joinCpuMs, joinNewCpuMs };
  } finally {
    stopMonitors();
    await stopForProfiles(cluster);
    await cluster.destroy();
  }
}

const bench: Benchmark = {
  name: 'e2e',
  description: 'new agent start and lease -> route programmed on every other agent; formation of 3 masters + N agents; real daemons in network namespaces',
  async run({ quick, sizes: chosen, log }): Promise<BenchResult> {
    if (process.getuid?.() !== 0) throw new Error('the e2e benchmark needs root (it builds network namespaces)');
    const sizes = chosen ?? (quick ? [4] : [4, 16, 32]);
    const trials = quick ? 3 : 10;
    const rows: Record<string, Cell>[] = [];
    const targets: TargetCheck[] = [];
    const notes: string[] = [];
    for (const agents of sizes) {
      const r = await measure(agents, trials, log);
      const spawn = summarize(r.trials.map((x) => x.spawnMs));
      const lease = summarize(r.trials.map((x) => x.leaseMs));
      const toLease = summarize(r.trials.map((x) => x.spawnToLeaseMs));
      rows.push({
        agents,
        trials: spawn.n,
        'lease->routes p50 ms': round(lease.p50),
        'lease->routes p99 ms': round(lease.p99),
        'spawn->routes p50 ms': round(spawn.p50),
        'spawn->routes p99 ms': round(spawn.p99),
        'spawn->lease p50 ms': round(toLease.p50),
        'formation ms': Math.round(r.formationMs),
        'daemons idle CPU ms/s': round(r.idleCpuMsPerSec),
        'CPU per join ms': round(r.joinCpuMs),
        'of which new daemon ms': round(r.joinNewCpuMs),
      });
      notes.push(...r.failures.map((f) => `${agents} agents: ${f}`));
      if (agents === 16) {
        const clean = r.failures.length === 0;
        targets.push({ name: 'lease granted -> routes on all 16 agents (p99)', target: '< 300 ms', measured: `${round(lease.p99)} ms (p50 ${round(lease.p50)} ms)`, met: clean && lease.p99 < 300 });
        targets.push({ name: 'process spawn -> routes on all 16 agents (p99)', target: '< 1,500 ms', measured: `${round(spawn.p99)} ms (p50 ${round(spawn.p50)} ms)`, met: clean && spawn.p99 < 1500 });
        targets.push({ name: '3 masters + 16 agents form with all routes programmed', target: '< 8,000 ms', measured: `${Math.round(r.formationMs)} ms`, met: r.formationMs < 8000 });
      }
    }
    notes.push(
      "spawn->routes starts at the new daemon process spawn (Node start included) and ends when the last existing agent's kernel announces the route (ip monitor).",
      "lease->routes starts when the new agent stores the lease the masters granted (its lease file's time) and ends at the same last announcement; spawn->lease is the rest (process start, joining, the Raft round trip).",
      'formation counts from the first daemon spawn until every agent has a lease and a route to every other.',
      `daemons idle CPU: all daemons' process trees (children included) in a quiet ${IDLE_WINDOW_MS / 1000} s window after formation, from /proc; CPU per join: the same from a new daemon's spawn until its route is on every agent, above idle, its own start included (Node start, module loading); 'of which new daemon' is the new daemon's own tree from its spawn to the last route, the rest is what the existing daemons spend on the join. On 2 cores, CPU per join / 2 is a floor under spawn->routes.`,
    );
    return { parameters: { sizes, trialsPerSize: trials, masters: 3, membershipProfile: 'local' }, rows, targets, notes };
  },
};

export default bench;
