/**
 * The replicated store on the simulator.
 *
 * 1. Propagation: N = 100 and 1,000 replicas (0.2-1 ms links); one update at a random replica;
 *    the time until every replica has applied it, by push (every delta to every replica) and
 *    with push lost (anti-entropy alone: one round with one random peer per replica every
 *    antiEntropyIntervalMs, the default 30 s).
 * 2. Anti-entropy cost between two replicas of 10,000 keys: equal, and with 1, 100 and 1,000
 *    keys differing (each differing key rewritten on one side): bytes both ways, round trips,
 *    keys repaired; against the size of the whole store (what a full-state exchange would send).
 */
import '../src/polyfills.js';
import { encodeCrdt } from '../src/crdt/index.js';
import { DEFAULT_KV_CONFIG, type KvError, type RoundReport } from '../src/kv/index.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';
import { KvCluster } from '../src/testing/index.js';

const LINK = { latency: { kind: 'uniform', minMs: 0.2, maxMs: 1 } } as const;

function propagation(nodes: number, push: boolean, updates: number, seed: number): number[] {
  const c = new KvCluster({ seed, link: LINK, push, persist: false });
  const names = Array.from({ length: nodes }, (_, i) => `r${i}`);
  for (const n of names) c.addReplica(n);
  const seen = new Map<string, Map<string, number>>();
  for (const n of names) {
    c.store(n).subscribe('probe/', (e) => {
      if (e.initial) return;
      let at = seen.get(e.key);
      if (at === undefined) {
        at = new Map();
        seen.set(e.key, at);
      }
      if (!at.has(n)) at.set(n, c.sim.nowMs());
    });
  }
  c.runFor(1000);
  const times: number[] = [];
  for (let u = 0; u < updates; u++) {
    const key = `probe/${u}`;
    const writer = c.store(c.sim.rng.pick(names));
    const t0 = c.sim.nowMs();
    writer.update(key, (m) => m.lww('v').write(writer.marker(), u));
    const deadline = t0 + 600_000;
    while ((seen.get(key)?.size ?? 0) < nodes && c.sim.nowMs() < deadline) c.runFor(push ? 5 : 1000);
    const at = seen.get(key) as Map<string, number>;
    times.push(Math.max(...at.values()) - t0);
  }
  return times;
}

function aeRound(c: KvCluster, from: string, to: string): RoundReport {
  let report: RoundReport | undefined;
  let failure: KvError | undefined;
  c.ae(from).round(to, (err, r) => {
    failure = err;
    report = r;
  });
  c.runFor(10_000);
  if (failure !== undefined) throw failure;
  if (report === undefined) throw new Error('anti-entropy round did not finish');
  return report;
}

const bench: Benchmark = {
  name: 'kv',
  description: 'replicated store: propagation by push and by anti-entropy alone; anti-entropy cost by difference',
  async run(ctx): Promise<BenchResult> {
    const rows: Record<string, Cell>[] = [];
    const targets: TargetCheck[] = [];
    const sizes = ctx.quick ? [100] : [100, 1000];
    for (const nodes of sizes) {
      for (const push of [true, false]) {
        const updates = push ? 20 : 5;
        const started = performance.now();
        const times = propagation(nodes, push, updates, 42 + nodes);
        const d = summarize(times);
        rows.push({
          measure: push ? 'update reaches all, by push' : 'update reaches all, push lost (anti-entropy only)',
          nodes,
          n: d.n,
          'p50 ms': round(d.p50),
          'p99 ms': round(d.p99),
          'max ms': round(d.max),
          bytes: null,
          'round trips': null,
          'keys repaired': null,
          'wall s': round((performance.now() - started) / 1000),
        });
        ctx.log(`propagation nodes=${nodes} push=${push}: p50 ${round(d.p50)} ms`);
      }
    }

    const keys = 10_000;
    const c = new KvCluster({ seed: 5, link: LINK, push: false, persist: false, kv: { antiEntropyIntervalMs: 0 } });
    c.addReplica('a');
    c.addReplica('b');
    const a = c.store('a');
    for (let i = 0; i < keys; i++) a.update(`agent/${i}`, (m) => m.lww('agentIp').write(a.marker(), `198.18.${i >> 8}.${i & 255}`));
    aeRound(c, 'b', 'a');
    if (!c.converged()) throw new Error('the first round did not make the replicas equal');
    let storeBytes = 0;
    for (const [key, state] of a.entries()) storeBytes += key.length + encodeCrdt(state).byteLength;
    const costs = new Map<number, number>();
    for (const differing of [0, 1, 100, 1000]) {
      const b = c.store('b');
      for (let i = 0; i < differing; i++) {
        const k = (i * 7919) % keys;
        b.update(`agent/${k}`, (m) => m.lww('agentIp').write(b.marker(), `changed-${differing}-${i}`));
      }
      const r = aeRound(c, 'a', 'b');
      if (!c.converged()) throw new Error(`not equal after repairing ${differing} keys`);
      const bytes = r.bytesSent + r.bytesReceived;
      costs.set(differing, bytes);
      rows.push({
        measure: differing === 0 ? 'anti-entropy, equal replicas' : `anti-entropy, ${differing} differing keys`,
        nodes: 2,
        n: 1,
        'p50 ms': null,
        'p99 ms': null,
        'max ms': null,
        bytes,
        'round trips': r.roundTrips,
        'keys repaired': r.keysRepaired,
        'wall s': null,
      });
    }
    const equal = rows.find((r) => r.measure === 'anti-entropy, equal replicas') as Record<string, Cell>;
    targets.push({
      name: `two equal replicas of ${keys} keys agree in 1 round trip`,
      target: '1 round trip',
      measured: `${equal['round trips']} round trip(s)`,
      met: equal['round trips'] === 1,
    });
    targets.push({ name: 'equal replicas: bytes for the round', target: '< 2048 bytes', measured: `${costs.get(0)} bytes`, met: (costs.get(0) as number) < 2048 });
    const per100 = (costs.get(100) as number) / 100;
    const per1000 = (costs.get(1000) as number) / 1000;
    targets.push({
      name: 'repair cost grows with the difference: bytes per differing key at 100 vs 1,000 differing keys',
      target: 'about equal (within 2x), far below the store',
      measured: `${round(per100)} vs ${round(per1000)} bytes per key; 1,000 keys cost ${round(((costs.get(1000) as number) / storeBytes) * 100)}% of the whole store (${storeBytes} bytes)`,
      met: per1000 <= per100 * 2 && per100 <= per1000 * 2 && (costs.get(1000) as number) < storeBytes / 2,
    });
    return {
      parameters: {
        propagationSizes: sizes,
        link: 'uniform 0.2-1 ms one way, no loss',
        antiEntropyIntervalMs: DEFAULT_KV_CONFIG.antiEntropyIntervalMs,
        pushUpdates: 20,
        antiEntropyOnlyUpdates: 5,
        antiEntropyKeys: keys,
        valuePerKey: 'one LWW register (an IP address)',
      },
      rows,
      targets,
      notes: [
        `the whole store of ${keys} keys encodes to ${storeBytes} bytes: what a full-state exchange would send each way`,
        "round trips are the initiator's: hello/subs, keyreq/keys, want/repair (the final message needs no answer)",
        'times are virtual (simulated) milliseconds',
      ],
    };
  },
};

export default bench;
