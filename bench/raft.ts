/**
 * The allocator (Raft + allocation state machine), default timeouts.
 *
 * Simulated (3 and 5 masters, 0.2-1 ms links): latency of one allocation at a time; throughput
 * of 1,000 allocations issued at once; failover: the leader crashes while a client allocates
 * every 20 ms, measured from the crash to the next allocation served (20 crashes).
 * Soak: the fault scenarios of the simulation tests over more seeds.
 *
 * Loopback: three master processes and a driver process holding one agent node; 1,000 lease
 * requests (50 in flight), their latency and the total time; then failover: the leader process
 * is killed with SIGKILL while the driver allocates every 20 ms, from the kill to the next
 * allocation served (3 kills, the killed master restarted each time).
 */
import '../src/polyfills.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OVERLAY_CONFIG, type OverlayConfig } from '../src/ipam/index.js';
import { generateClusterKey } from '../src/net/index.js';
import { WorkerHandle, type WorkerEvent } from './lib/cluster-parent.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';
import { IpamCluster, runScenario } from '../src/testing/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.timeOrigin + performance.now();

function simulated(masters: number): { latency: number[]; throughputMs: number; failover: number[] } {
  const link = { latency: { kind: 'uniform', minMs: 0.2, maxMs: 1 } } as const;
  const c = new IpamCluster({ seed: 100 + masters, masters, overlay: DEFAULT_OVERLAY_CONFIG as OverlayConfig, link });
  c.sim.runFor(3000);
  const latency: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = c.sim.nowMs();
    let at = -1;
    c.allocate(`seq-${i}`, (_l, when) => (at = when));
    while (at < 0) c.sim.runFor(1);
    latency.push(at - t0);
  }
  const start = c.sim.nowMs();
  let done = 0;
  for (let i = 0; i < 1000; i++) c.allocate(`bulk-${i}`, () => done++);
  while (done < 1000) c.sim.runFor(5);
  const throughputMs = c.sim.nowMs() - start;
  const failover: number[] = [];
  for (let k = 0; k < 20; k++) {
    const f = new IpamCluster({ seed: 1000 + masters * 100 + k, masters, overlay: DEFAULT_OVERLAY_CONFIG as OverlayConfig, link });
    f.sim.runFor(3000);
    const leader = f.leader() as string;
    const crashAt = f.sim.nowMs();
    f.crash(leader);
    let served = -1;
    let n = 0;
    const tick = (): void => {
      if (served >= 0) return;
      f.allocate(`fo-${n++}`, (_l, when) => {
        if (served < 0 && when > crashAt) served = when;
      });
      f.sim.scheduler.after(20, tick);
    };
    tick();
    while (served < 0 && f.sim.nowMs() < crashAt + 30_000) f.sim.runFor(10);
    failover.push(served - crashAt);
  }
  return { latency, throughputMs, failover };
}

async function loopback(log: (m: string) => void): Promise<{ latency: number[]; totalMs: number; errors: number; failover: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-bench-raft-'));
  const key = generateClusterKey();
  const masters = ['m0', 'm1', 'm2'];
  const script = join(here, 'lib', 'cluster-worker.js');
  const execArgv = ['--import', join(here, '..', 'src', 'polyfills.js')];
  const workers = new Map<string, WorkerHandle>();
  const spawn = (name: string, role: 'master' | 'agent', seeds: string[]): WorkerHandle => {
    const w = WorkerHandle.spawn(script, execArgv);
    w.send({ cmd: 'start', nodes: [{ name, dataDir: join(dir, name), seeds, clusterKey: key, label: 'bench', packetTransport: 'udp', role, masters }] });
    workers.set(name, w);
    return w;
  };
  try {
    const first = await spawn('m0', 'master', []).waitFor((e) => e.evt === 'started', 60_000);
    const m = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec((first.nodes as { libp2p: string }[])[0]?.libp2p ?? '') as RegExpExecArray;
    const seeds = [`${m[1]}:${m[2]}`];
    spawn('m1', 'master', seeds);
    spawn('m2', 'master', seeds);
    const driver = spawn('driver', 'agent', seeds);
    const driverUp = await driver.waitFor((e) => e.evt === 'started', 60_000);
    // Restarted masters rejoin through the driver (the killed seed comes back on another port).
    const rejoin = [(driverUp.nodes as { libp2p: string }[])[0]?.libp2p as string];
    await driver.waitFor((e) => e.evt === 'lease', 60_000);
    log('loopback: the driver holds a lease');
    const leaderNow = (): string | undefined => {
      const events = [...workers.values()].flatMap((w) => w.events.filter((e) => e.evt === 'raft' && e.role === 'leader'));
      return (events.sort((a, b) => (b.term as number) - (a.term as number))[0]?.node as string | undefined) ?? undefined;
    };
    const mark = driver.events.length;
    driver.send({ cmd: 'allocate-many', node: 'driver', prefix: 'agent-', count: 1000, concurrency: 50, timeoutMs: 3000 });
    const result = (await driver.waitFor((e) => e.evt === 'allocated' && driver.events.indexOf(e) >= mark, 120_000)) as WorkerEvent;
    log(`loopback: 1000 allocations in ${round(result.totalMs as number)} ms`);
    const failover: number[] = [];
    for (let k = 0; k < 3; k++) {
      const leader = leaderNow();
      if (leader === undefined) throw new Error('no leader to kill');
      const killedAt = now();
      (workers.get(leader) as WorkerHandle).kill('SIGKILL');
      let served = -1;
      for (let n = 0; served < 0 && now() - killedAt < 30_000; n++) {
        const before = driver.events.length;
        driver.send({ cmd: 'allocate-many', node: 'driver', prefix: `fo-${k}-${n}-`, count: 1, concurrency: 1, timeoutMs: 500 });
        const r = await driver.waitFor((e) => e.evt === 'allocated' && driver.events.indexOf(e) >= before, 60_000);
        if ((r.latencies as number[]).length === 1) served = now();
        else await sleep(20);
      }
      failover.push(served - killedAt);
      log(`loopback: failover ${k + 1}: ${round(served - killedAt)} ms`);
      const back = spawn(leader, 'master', rejoin);
      await back.waitFor((e) => e.evt === 'raft' && e.role === 'follower', 30_000);
      await sleep(2000);
    }
    return { latency: result.latencies as number[], totalMs: result.totalMs as number, errors: result.errors as number, failover };
  } finally {
    for (const w of workers.values()) w.kill('SIGKILL');
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
}

const bench: Benchmark = {
  name: 'raft',
  description: 'allocator: allocation latency and throughput, leader failover (simulated and on loopback), fault soak',
  async run(ctx): Promise<BenchResult> {
    const rows: Record<string, Cell>[] = [];
    const targets: TargetCheck[] = [];
    for (const masters of [3, 5]) {
      const s = simulated(masters);
      const l = summarize(s.latency);
      const f = summarize(s.failover);
      rows.push({ where: 'simulated', masters, measure: 'one allocation (sequential)', n: l.n, 'p50 ms': round(l.p50), 'p99 ms': round(l.p99), 'max ms': round(l.max), total: null });
      rows.push({ where: 'simulated', masters, measure: '1,000 allocations at once', n: 1000, 'p50 ms': null, 'p99 ms': null, 'max ms': null, total: `${round(s.throughputMs)} ms` });
      rows.push({ where: 'simulated', masters, measure: 'failover: crash to next allocation', n: f.n, 'p50 ms': round(f.p50), 'p99 ms': round(f.p99), 'max ms': round(f.max), total: null });
      targets.push({ name: `failover, simulated, ${masters} masters (p99)`, target: '< 3000 ms', measured: `${round(f.p99)} ms`, met: f.p99 < 3000 });
      ctx.log(`simulated ${masters} masters done`);
    }
    const soakSeeds = ctx.quick ? 200 : 3000;
    let violations = 0;
    let stuck = 0;
    for (let seed = 10_001; seed < 10_001 + soakSeeds; seed++) {
      const r = runScenario({ seed, masters: seed % 2 === 1 ? 3 : 5, faultyMs: 6000, livenessBoundMs: 10_000 });
      violations += r.violations.length;
      stuck += r.stuck;
    }
    rows.push({
      where: 'simulated',
      masters: '3 and 5',
      measure: `fault soak, ${soakSeeds} seeds`,
      n: soakSeeds,
      'p50 ms': null,
      'p99 ms': null,
      'max ms': null,
      total: `${violations} violations, ${stuck} stuck`,
    });
    targets.push({ name: `fault soak over ${soakSeeds} seeds`, target: '0 violations, 0 stuck', measured: `${violations} violations, ${stuck} stuck`, met: violations === 0 && stuck === 0 });
    const lb = await loopback(ctx.log);
    const ll = summarize(lb.latency);
    const lf = summarize(lb.failover);
    rows.push({
      where: 'loopback',
      masters: 3,
      measure: '1,000 lease requests, 50 in flight',
      n: ll.n,
      'p50 ms': round(ll.p50),
      'p99 ms': round(ll.p99),
      'max ms': round(ll.max),
      total: `${round(lb.totalMs)} ms, ${lb.errors} errors`,
    });
    rows.push({ where: 'loopback', masters: 3, measure: 'failover: SIGKILL to next allocation', n: lf.n, 'p50 ms': round(lf.p50), 'p99 ms': round(lf.p99), 'max ms': round(lf.max), total: null });
    targets.push({ name: '1,000 agents allocated on loopback', target: '< 5000 ms', measured: `${round(lb.totalMs)} ms (${lb.errors} errors)`, met: lb.totalMs < 5000 && lb.errors === 0 });
    targets.push({ name: 'failover on loopback, SIGKILL of the leader (worst of 3)', target: '< 3000 ms', measured: `${round(lf.max)} ms (p50 ${round(lf.p50)})`, met: lf.max < 3000 });
    return {
      parameters: { electionTimeoutMs: '800-1600', heartbeatMs: 100, simulatedLink: 'uniform 0.2-1 ms', loopbackMasters: 3, soakSeeds },
      rows,
      targets,
      notes: [
        'simulated times are virtual milliseconds; loopback times are wall-clock milliseconds on this 2-core machine',
        'loopback lease requests come from one agent node (the driver) straight to the leader, as an agent would, for made-up agent names',
      ],
    };
  },
};

export default bench;
