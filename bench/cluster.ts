/**
 * Live clusters on 127.0.0.1: N = 10, 30 and 60 lashup nodes in worker processes, SWIM over
 * encrypted UDP, the store over libp2p gossipsub, default (LAN) timeouts.
 *
 * Layout: three single-node "victim" processes (killed with SIGKILL one at a time) and the other
 * N - 3 nodes spread over up to 8 processes (several nodes per process, each node with its own
 * sockets, libp2p node and data directory).
 *
 * Measured:
 * - update to all: 100 updates, each at a random node; from the writer applying it to the last
 *   node applying it (p50, p99, max), timestamps absolute across processes;
 * - SIGKILL to failed at all: from the kill to the last surviving node declaring the victim failed;
 * - false failures: any live node declared failed, over the whole run;
 * - idle: CPU (user + system) of all workers over 10 s with nothing happening, per node, as a
 *   percentage of one core; bytes per second per node on the loopback interface (everything:
 *   SWIM, libp2p, TCP headers); resident memory per node.
 */
import '../src/polyfills.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateClusterKey } from '../src/net/index.js';
import { WorkerHandle, type WorkerEvent } from './lib/cluster-parent.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function loopbackTxBytes(): number {
  const line = readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .find((l) => l.trim().startsWith('lo:'));
  const fields = (line ?? '').split(':')[1]?.trim().split(/\s+/) ?? [];
  return Number(fields[8] ?? 0);
}

interface RunResult {
  updateMs: number[];
  updatesLost: number;
  killToFailedMs: number[];
  falseFailures: number;
  idleCpuPercentPerNode: number;
  idleBytesPerNodeSec: number;
  rssMiBPerNode: number;
  singleNodeRssMiB: number;
  startupMs: number;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function stats(workers: WorkerHandle[]): Promise<WorkerEvent[]> {
  const marks = workers.map((w) => w.events.length);
  for (const w of workers) w.send({ cmd: 'stats' });
  return Promise.all(workers.map((w, i) => w.waitFor((e) => e.evt === 'stats' && w.events.indexOf(e) >= (marks[i] as number), 10_000)));
}

async function run(nodes: number, log: (m: string) => void): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-bench-cluster-'));
  const key = generateClusterKey();
  const script = join(here, 'lib', 'cluster-worker.js');
  const execArgv = ['--import', join(here, '..', 'src', 'polyfills.js')];
  const victims = 3;
  const rest = nodes - victims;
  const processes = Math.min(8, rest);
  const workers: WorkerHandle[] = [];
  const placement = new Map<WorkerHandle, string[]>();
  const all: WorkerHandle[] = [];
  try {
    const started = Date.now();
    for (let p = 0; p < processes + victims; p++) {
      const w = WorkerHandle.spawn(script, execArgv);
      all.push(w);
      placement.set(w, []);
    }
    const main = all.slice(0, processes);
    const victimWorkers = all.slice(processes);
    for (let i = 0; i < rest; i++) (placement.get(main[i % processes] as WorkerHandle) as string[]).push(`n${i}`);
    victimWorkers.forEach((w, i) => (placement.get(w) as string[]).push(`v${i}`));
    const spec = (name: string, seeds: string[]) => ({ name, dataDir: join(dir, name), seeds, clusterKey: key, label: 'bench', packetTransport: 'udp' });
    // The seed first, alone, so everyone else has an address to join.
    const first = main[0] as WorkerHandle;
    first.send({ cmd: 'start', nodes: [spec('n0', [])] });
    const up = await first.waitFor((e) => e.evt === 'started', 30_000);
    const seedAddr = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec((up.nodes as { libp2p: string }[])[0]?.libp2p ?? '') as RegExpExecArray;
    const seeds = [`${seedAddr[1]}:${seedAddr[2]}`];
    (placement.get(first) as string[]).shift();
    for (const w of all) {
      const names = placement.get(w) as string[];
      if (names.length > 0) w.send({ cmd: 'start', nodes: names.map((n) => spec(n, seeds)) });
    }
    // The seed's worker may start more nodes: wait for a second 'started' from it.
    const startedCount = (w: WorkerHandle): number => w.events.filter((e) => e.evt === 'started').length;
    await until(() => all.every((w) => startedCount(w) >= (w === first ? 1 : 0) + ((placement.get(w) as string[]).length > 0 ? 1 : 0)), 60_000, 'workers started');
    if (all.some((w) => w.events.some((e) => e.evt === 'error'))) throw new Error(`a worker failed: ${JSON.stringify(all.flatMap((w) => w.events.filter((e) => e.evt === 'error')))}`);
    workers.push(...all);
    let converged = false;
    for (let i = 0; i < 120 && !converged; i++) {
      const s = await stats(all);
      converged = s.every((e) => (e.nodes as { live: number }[]).every((n) => n.live === nodes));
      if (!converged) await sleep(500);
    }
    if (!converged) throw new Error(`${nodes} nodes did not converge`);
    const startupMs = Date.now() - started;
    log(`nodes=${nodes}: converged after ${startupMs} ms`);
    // Settle: start-up garbage collected, meshes formed, first syncs done.
    await sleep(15_000);

    // False failures: every failed event about a node that was not killed.
    const killed = new Set<string>();
    let falseFailures = 0;
    for (const w of all) w.onEvent((e) => void (e.evt === 'member' && e.type === 'failed' && !killed.has(e.member as string) && falseFailures++));

    // Idle.
    const before = await stats(all);
    const txBefore = loopbackTxBytes();
    const idleStart = now();
    await sleep(10_000);
    const after = await stats(all);
    const idleSec = (now() - idleStart) / 1000;
    const txAfter = loopbackTxBytes();
    let cpuUs = 0;
    after.forEach((e, i) => {
      const b = before[i] as WorkerEvent;
      cpuUs += (e.cpuUserUs as number) - (b.cpuUserUs as number) + (e.cpuSystemUs as number) - (b.cpuSystemUs as number);
    });
    const idleCpuPercentPerNode = (cpuUs / 1e6 / idleSec / nodes) * 100;
    const idleBytesPerNodeSec = (txAfter - txBefore) / idleSec / nodes;
    const rssMiBPerNode = after.slice(0, processes).reduce((s, e) => s + (e.rssBytes as number), 0) / 2 ** 20 / rest;
    const singleNodeRssMiB = summarize(after.slice(processes).map((e) => (e.rssBytes as number) / 2 ** 20)).p50;

    // Updates.
    const owner = new Map<string, WorkerHandle>([['n0', first]]);
    for (const [w, names] of placement) for (const n of names) owner.set(n, w);
    const everyone = [...owner.keys()];
    const applied = new Map<string, Map<string, number>>();
    for (const w of all) {
      w.onEvent((e) => {
        if (e.evt !== 'applied') return;
        let at = applied.get(e.key as string);
        if (at === undefined) applied.set(e.key as string, (at = new Map()));
        if (!at.has(e.node as string)) at.set(e.node as string, e.atMs as number);
      });
    }
    const updateMs: number[] = [];
    let updatesLost = 0;
    for (let u = 0; u < 100; u++) {
      const writer = everyone[(u * 7919) % everyone.length] as string;
      const key = `bench/${nodes}/${u}`;
      (owner.get(writer) as WorkerHandle).send({ cmd: 'update', node: writer, key, value: u });
      try {
        await until(() => (applied.get(key)?.size ?? 0) === everyone.length, 5000, key);
        const at = applied.get(key) as Map<string, number>;
        updateMs.push(Math.max(...at.values()) - (at.get(writer) as number));
      } catch {
        updatesLost++;
      }
      await sleep(20);
    }
    log(`nodes=${nodes}: update-to-all p50 ${round(summarize(updateMs).p50)} ms p99 ${round(summarize(updateMs).p99)} ms`);

    // Kills.
    const killToFailedMs: number[] = [];
    for (const victim of victimWorkers) {
      const name = (placement.get(victim) as string[])[0] as string;
      killed.add(name);
      const failedAt = new Map<string, number>();
      const stop = all.map((w) => w.onEvent((e) => void (e.evt === 'member' && e.type === 'failed' && e.member === name && !failedAt.has(e.node as string) && failedAt.set(e.node as string, e.atMs as number))));
      const survivors = everyone.filter((n) => !killed.has(n));
      const t0 = now();
      victim.kill('SIGKILL');
      try {
        await until(() => survivors.every((n) => failedAt.has(n)), 30_000, `${name} failed everywhere`);
        killToFailedMs.push(Math.max(...failedAt.values()) - t0);
      } catch {
        killToFailedMs.push(NaN);
      }
      for (const s of stop) s();
      log(`nodes=${nodes}: SIGKILL of ${name} -> failed at all in ${round(killToFailedMs[killToFailedMs.length - 1] as number)} ms`);
      await sleep(2000);
    }
    return { updateMs, updatesLost, killToFailedMs, falseFailures, idleCpuPercentPerNode, idleBytesPerNodeSec, rssMiBPerNode, singleNodeRssMiB, startupMs };
  } finally {
    for (const w of all) w.kill('SIGKILL');
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
}

const bench: Benchmark = {
  name: 'cluster',
  description: 'live clusters on 127.0.0.1: update-to-all latency, SIGKILL-to-failed, idle CPU, bytes and memory per node',
  async run(ctx): Promise<BenchResult> {
    const sizes = ctx.quick ? [10] : [10, 30, 60];
    const rows: Record<string, Cell>[] = [];
    const targets: TargetCheck[] = [];
    for (const nodes of sizes) {
      const r = await run(nodes, ctx.log);
      const u = summarize(r.updateMs);
      const k = summarize(r.killToFailedMs);
      rows.push({
        nodes,
        processes: Math.min(8, nodes - 3) + 3,
        'startup ms': r.startupMs,
        'update p50 ms': round(u.p50),
        'update p99 ms': round(u.p99),
        'update max ms': round(u.max),
        'updates lost': r.updatesLost,
        'kill->failed p50 ms': round(k.p50),
        'kill->failed max ms': round(k.max),
        'false failures': r.falseFailures,
        'idle CPU %/node': round(r.idleCpuPercentPerNode),
        'idle bytes/s/node': round(r.idleBytesPerNodeSec),
        'RSS MiB/node': round(r.rssMiBPerNode),
        'RSS MiB 1-node process': round(r.singleNodeRssMiB),
      });
      if (nodes === 60) targets.push({ name: 'update to all, p99, N=60', target: '< 50 ms', measured: `${round(u.p99)} ms`, met: u.p99 < 50 && r.updatesLost === 0 });
      if (nodes === 30) {
        targets.push({ name: 'SIGKILL to failed at all, N=30, default timeouts (worst of 3)', target: '< 4000 ms', measured: `${round(k.max)} ms (p50 ${round(k.p50)})`, met: k.max < 4000 });
        targets.push({ name: 'false failures, N=30', target: '0', measured: String(r.falseFailures), met: r.falseFailures === 0 });
      }
      targets.push({ name: `idle CPU per node, N=${nodes}`, target: '<= 0.3% of a core', measured: `${round(r.idleCpuPercentPerNode)}%`, met: r.idleCpuPercentPerNode <= 0.3 });
    }
    return {
      parameters: {
        sizes,
        layout: '3 single-node victim processes + the other N - 3 nodes over up to 8 processes',
        packetTransport: 'udp',
        membershipProfile: 'lan (defaults)',
        updates: 100,
        idleWindowSec: 10,
        machine: '2 cores shared by every process',
      },
      rows,
      targets,
      notes: [
        'bytes/s/node counts everything on the loopback interface (SWIM over UDP, libp2p, TCP/IP headers) divided by N',
        'RSS MiB/node divides the multi-node processes\' resident memory by their nodes (the runtime is shared); the single-node figure is a whole process',
        'CPU includes the Node.js runtime of each process',
      ],
    };
  },
};

export default bench;
