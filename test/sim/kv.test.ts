/**
 * The replicated store on the simulated network, deterministic by seed: 50 replicas with random
 * concurrent updates and removals under 10% packet loss, a partition and restarts from persisted
 * state (after process kills and power losses) end identical after healing, within a bounded
 * number of anti-entropy rounds; subscriptions fire once per real change, never on no-op merges.
 */
import t from 'tap';
import type { KvChange } from '../../src/kv/index.js';
import { KvCluster } from '../../src/testing/index.js';

interface Watch {
  events: KvChange[];
}

function workload(seed: number) {
  const c = new KvCluster({ seed, link: { latency: { kind: 'uniform', minMs: 0.5, maxMs: 5 }, lossProbability: 0.1 } });
  const names = Array.from({ length: 50 }, (_, i) => `r${i}`);
  for (const n of names) c.addReplica(n);
  const watched = ['r0', 'r1', 'r2'];
  const watches = new Map<string, Watch>();
  for (const w of watched) {
    const watch: Watch = { events: [] };
    c.store(w).subscribe('', (e) => watch.events.push(e));
    watches.set(w, watch);
  }
  const rng = c.sim.rng;
  const keys = Array.from({ length: 40 }, (_, i) => `overlay/key-${i}`);
  const step = (): void => {
    const up = names.filter((n) => c.isUp(n));
    const who = rng.pick(up);
    const store = c.store(who);
    const key = rng.pick(keys);
    const roll = rng.next();
    if (roll < 0.15) store.remove(key);
    else if (roll < 0.25) store.update(key, (m) => m.remove(`f${rng.int(4)}`));
    else {
      const marker = store.marker();
      store.update(key, (m) => m.lww(`f${rng.int(4)}`).write(marker, `${who}:${rng.int(1000)}`));
    }
  };
  return { c, names, watched, watches, step };
}

t.test('50 replicas, loss, a partition, crashes and restarts: identical after healing', async (t) => {
  const { c, names, watched, watches, step } = workload(7);
  // Phase 1: writes everywhere.
  for (let i = 0; i < 300; i++) {
    step();
    c.runFor(20);
  }
  // Phase 2: a partition into halves; both keep writing; some replicas crash.
  const a = names.slice(0, 25);
  const b = names.slice(25);
  c.sim.network.partition([a, b]);
  for (let i = 0; i < 300; i++) {
    step();
    if (i === 50) c.crash('r10'); // a process kill: written data survives
    if (i === 80) c.crash('r30', true); // a power loss: unsynced data may be torn
    if (i === 150) c.restart('r10');
    if (i === 200) c.restart('r30');
    c.runFor(20);
  }
  t.notOk(c.converged(), 'the sides diverged');
  // Phase 3: heal, stop writing, let anti-entropy finish.
  c.sim.network.heal();
  const interval = c.config.antiEntropyIntervalMs;
  let rounds = 0;
  while (!c.converged() && rounds < 30) {
    c.runFor(interval);
    rounds++;
  }
  t.ok(c.converged(), `identical after ${rounds} anti-entropy intervals (${(rounds * interval) / 1000} s)`);
  t.ok(rounds <= 15, 'within a bounded number of rounds');
  t.equal(c.recoveries.get('r10')?.truncatedBytes, 0, 'a killed process loses nothing written');
  t.ok((c.recoveries.get('r10')?.keys ?? 0) > 0 && (c.recoveries.get('r30')?.keys ?? 0) > 0, 'restarted replicas recovered their state from disk');
  const reference = c.store('r0');
  t.ok(reference.keys().length > 0);

  // Subscriptions: per key, events chain (old = previous new), never a no-op, end at the value.
  c.runFor(1);
  for (const w of watched) {
    const events = (watches.get(w) as Watch).events;
    const last = new Map<string, unknown>();
    let broken = 0;
    for (const e of events) {
      if (JSON.stringify(e.old) === JSON.stringify(e.new)) broken++;
      if (!e.initial && JSON.stringify(last.get(e.key)) !== JSON.stringify(e.old)) broken++;
      last.set(e.key, e.new);
    }
    t.equal(broken, 0, `${w}: ${events.length} events, each a real change following the previous`);
    for (const key of new Set([...last.keys(), ...c.store(w).keys()])) {
      t.same(last.get(key), c.store(w).get(key), `${w}: the last event of ${key} is its value`);
    }
  }

  // Replaying every delta of a replica to another (duplicates, already known) fires nothing.
  const before = (watches.get('r1') as Watch).events.length;
  for (const [key, state] of c.store('r5').entries()) {
    c.store('r1').applyRepair(key, state.clone(), state.context, 0);
  }
  c.runFor(100);
  t.equal((watches.get('r1') as Watch).events.length, before, 'no event for a merge that changes nothing');
  const stats = names.reduce((s, n) => s + c.store(n).stats.remoteDeltasApplied, 0);
  t.ok(stats > 1000, `${stats} remote deltas applied`);
});

t.test('with every push lost, anti-entropy alone converges', async (t) => {
  const c = new KvCluster({ seed: 9, push: false });
  for (let i = 0; i < 20; i++) c.addReplica(`r${i}`);
  for (let i = 0; i < 20; i++) {
    const s = c.store(`r${i}`);
    s.update(`k${i}`, (m) => m.lww('v').write(s.marker(), i));
  }
  let rounds = 0;
  while (!c.converged() && rounds < 50) {
    c.runFor(c.config.antiEntropyIntervalMs);
    rounds++;
  }
  t.ok(c.converged(), `converged after ${rounds} intervals`);
  t.same(c.store('r19').keys().length, 20);
});

t.test('rounds that find differences come quickly: writes lost at start spread in seconds, not intervals', async (t) => {
  // 60 replicas, every push lost: each replica's own write is known only to itself, as a node's
  // first writes were when it published before any peer subscribed.
  const timeToConverge = (catchUpMs: number): number => {
    const c = new KvCluster({ seed: 4, push: false, kv: { antiEntropyCatchUpIntervalMs: catchUpMs } });
    for (let i = 0; i < 60; i++) c.addReplica(`r${i}`);
    for (let i = 0; i < 60; i++) {
      const s = c.store(`r${i}`);
      s.update(`k${i}`, (m) => m.lww('v').write(s.marker(), i));
    }
    const startMs = c.sim.scheduler.nowMs();
    while (!c.converged() && c.sim.scheduler.nowMs() - startMs < 600_000) c.runFor(500);
    t.ok(c.converged(), `converged with catch-up ${catchUpMs} ms`);
    const convergedMs = c.sim.scheduler.nowMs() - startMs;
    const rounds = [...Array(60).keys()].reduce((n, i) => n + c.antiEntropyOf(`r${i}`).stats.roundsStarted, 0);
    const catchUps = [...Array(60).keys()].reduce((n, i) => n + c.antiEntropyOf(`r${i}`).stats.catchUpRounds, 0);
    t.comment(`catch-up ${catchUpMs} ms: converged after ${convergedMs} ms, ${rounds} rounds (${catchUps} brought forward)`);
    if (catchUpMs === 0) t.equal(catchUps, 0, 'none brought forward when catch-up is off');
    // Once equal (and after the few confirming quick rounds), rounds fall back to the full
    // interval: in the second minute after converging the rate is that of the interval (60
    // replicas, one round per 30 s each: ~120 a minute), not one per second each (3,600).
    c.runFor(60_000);
    const before = [...Array(60).keys()].reduce((n, i) => n + c.antiEntropyOf(`r${i}`).stats.roundsStarted, 0);
    c.runFor(60_000);
    const after = [...Array(60).keys()].reduce((n, i) => n + c.antiEntropyOf(`r${i}`).stats.roundsStarted, 0);
    t.ok(after - before <= 200, `${after - before} rounds in the second minute after converging`);
    return convergedMs;
  };
  const slow = timeToConverge(0);
  const quick = timeToConverge(1000);
  t.ok(quick * 4 < slow, `catch-up rounds converge ${Math.round(slow / quick)}x faster (${quick} ms against ${slow} ms)`);
});
