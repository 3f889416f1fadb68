import t, { type Test } from 'tap';
import { SeededRng } from '../../../src/common/index.js';
import { Scheduler } from '../../../src/sim/index.js';
import { PeerSet, type PeerCandidate, type PeerPlan } from '../../../src/net/index.js';

function setup(seed: number, options: { degree?: number; rotateIntervalMs?: number; retryBackoffMs?: number } = {}) {
  const scheduler = new Scheduler();
  const set = new PeerSet({
    degree: options.degree ?? 3,
    rotateIntervalMs: options.rotateIntervalMs ?? 60_000,
    retryBackoffMs: options.retryBackoffMs ?? 10_000,
    clock: scheduler.clock(),
    rng: new SeededRng(seed),
  });
  return { scheduler, set };
}

function members(n: number, masters: readonly string[] = []): PeerCandidate[] {
  const out: PeerCandidate[] = [];
  for (let i = 0; i < n; i++) out.push({ name: `n${i}`, mustKeep: false });
  for (const m of masters) out.push({ name: m, mustKeep: true });
  return out;
}

/** Applies a plan to the shell's view and checks it never adds what is kept or removes what is not. */
function apply(t: Test, view: Set<string>, plan: PeerPlan): void {
  for (const name of plan.remove) {
    t.ok(view.has(name), `removes ${name}, which was kept`);
    view.delete(name);
  }
  for (const name of plan.add) {
    t.notOk(view.has(name), `adds ${name}, which was not kept`);
    view.add(name);
  }
}

t.test('peer set: degree random peers plus every must-keep member, whatever the cluster size', async (t) => {
  for (const size of [2, 10, 1000]) {
    const { set } = setup(size, { degree: 5 });
    const view = new Set<string>();
    apply(t, view, set.setCandidates(members(size, ['m1', 'm2', 'm3'])));
    t.same(new Set(set.names), view, 'the plan describes the set');
    t.equal(view.size, Math.min(size, 5) + 3, `${size} members: min(size, degree) random + 3 masters`);
    for (const m of ['m1', 'm2', 'm3']) t.ok(view.has(m), `${m} kept`);
  }
});

t.test('peer set: different nodes choose different peers (random, not the first names)', async (t) => {
  const chosen = new Map<string, number>();
  for (let seed = 1; seed <= 50; seed++) {
    const { set } = setup(seed, { degree: 3 });
    set.setCandidates(members(100));
    for (const name of set.names) chosen.set(name, (chosen.get(name) ?? 0) + 1);
  }
  // 150 picks among 100 members: a fixed choice would put all of them on 3 names.
  t.ok(chosen.size > 50, `${chosen.size} distinct members chosen by 50 nodes`);
  t.ok(Math.max(...chosen.values()) < 10, "no member is everyone's peer");
});

t.test('peer set: a member that leaves membership is replaced; one that refuses is avoided for the backoff', async (t) => {
  const { scheduler, set } = setup(7, { degree: 3, rotateIntervalMs: 0, retryBackoffMs: 10_000 });
  const view = new Set<string>();
  let candidates = members(10);
  apply(t, view, set.setCandidates(candidates));
  const gone = [...view][0] as string;
  candidates = candidates.filter((c) => c.name !== gone);
  const plan = set.setCandidates(candidates);
  t.same(plan.remove, [gone], 'the member that left is released');
  t.equal(plan.add.length, 1, 'and one other member is chosen');
  apply(t, view, plan);
  t.equal(view.size, 3);

  const refuser = [...view][0] as string;
  const refused = set.refused(refuser);
  t.same(refused.remove, [refuser], 'a refusing member is dropped');
  apply(t, view, refused);
  t.notOk(view.has(refuser));
  // While its backoff runs it is not chosen again, however often the set is replanned: lose
  // every spare member (9 candidates - the refuser - 3 kept = 5) and the set still holds 3.
  for (let i = 0; i < 5; i++) {
    const lost = [...view][0] as string;
    apply(t, view, set.lost(lost));
    t.notOk(view.has(refuser), 'the refusing member stays avoided during its backoff');
    scheduler.runFor(100);
    apply(t, view, set.tick());
  }
  t.equal(set.stats.refused, 1);
  t.equal(set.stats.lost, 5);
  t.equal(view.size, 3, 'the degree holds while members are avoided');
});

t.test('peer set: everyone avoided, then chosen again when the backoff ends', async (t) => {
  const { scheduler, set } = setup(3, { degree: 2, rotateIntervalMs: 0, retryBackoffMs: 10_000 });
  const view = new Set<string>();
  apply(t, view, set.setCandidates(members(2)));
  for (const name of [...view]) apply(t, view, set.lost(name));
  t.equal(view.size, 0, 'both peers lost and avoided: nothing to keep');
  scheduler.runFor(9_999);
  apply(t, view, set.tick());
  t.equal(view.size, 0, 'not before the backoff ends');
  scheduler.runFor(1);
  apply(t, view, set.tick());
  t.equal(view.size, 2, 'both kept again once the backoff ended');
});

t.test('peer set: a lost must-keep member is asked again after its backoff, never replaced', async (t) => {
  const { scheduler, set } = setup(5, { degree: 2, rotateIntervalMs: 0, retryBackoffMs: 5_000 });
  const view = new Set<string>();
  apply(t, view, set.setCandidates(members(10, ['m1'])));
  const plan = set.lost('m1');
  t.same(plan, { add: [], remove: ['m1'] }, 'the master is dropped and no random peer takes its place');
  apply(t, view, plan);
  scheduler.runFor(5_000);
  const back = set.tick();
  t.same(back, { add: ['m1'], remove: [] }, 'the master is kept again after the backoff');
  t.same(set.lost('nobody'), { add: [], remove: [] }, 'losing a peer that is not kept changes nothing');
});

t.test('peer set: rotation swaps one random peer per interval and the set keeps mixing', async (t) => {
  const { scheduler, set } = setup(11, { degree: 4, rotateIntervalMs: 60_000 });
  const view = new Set<string>();
  apply(t, view, set.setCandidates(members(40, ['m1'])));
  const first = new Set(view);
  const seen = new Set(view);
  for (let i = 0; i < 60; i++) {
    scheduler.runFor(15_000);
    const plan = set.tick();
    t.ok(plan.add.length <= 1 && plan.remove.length <= 1, 'at most one swap per tick');
    t.notOk(plan.remove.includes('m1'), 'must-keep members are never rotated out');
    apply(t, view, plan);
    for (const n of view) seen.add(n);
    t.equal(view.size, 5);
  }
  // 15 minutes at one swap per 60-90 s: 10-15 rotations.
  t.ok(set.stats.rotations >= 10 && set.stats.rotations <= 15, `${set.stats.rotations} rotations in 15 minutes`);
  t.ok(seen.size >= 12, `${seen.size} distinct peers over time`);
  t.not([...first].filter((n) => view.has(n)).length, 5, 'the set changed');
});

t.test('peer set: a partition heals across kept sets that all lay on one side', async (t) => {
  // Two sides of 20; each node's candidates were only its own side while apart. After the
  // heal, every node sees all 40 alive; rotation must put cross-side edges into the graph.
  const nodes = Array.from({ length: 40 }, (_, i) => `n${i}`);
  const side = (name: string): number => (Number(name.slice(1)) < 20 ? 0 : 1);
  const scheduler = new Scheduler();
  const sets = new Map(nodes.map((name, i) => [name, new PeerSet({ degree: 3, rotateIntervalMs: 60_000, retryBackoffMs: 10_000, clock: scheduler.clock(), rng: new SeededRng(100 + i) })]));
  for (const [name, set] of sets) set.setCandidates(nodes.filter((n) => n !== name && side(n) === side(name)).map((n) => ({ name: n, mustKeep: false })));
  const crossEdges = (): number => {
    let n = 0;
    for (const [name, set] of sets) n += set.names.filter((p) => side(p) !== side(name)).length;
    return n;
  };
  t.equal(crossEdges(), 0, 'while apart, no kept peer lies across');
  for (const [name, set] of sets) set.setCandidates(nodes.filter((n) => n !== name).map((n) => ({ name: n, mustKeep: false })));
  t.equal(crossEdges(), 0, 'new candidates alone add no edge: every set is full already');
  // Members returned: each node mixes once. One swap per node, half the members across.
  for (const set of sets.values()) set.mix();
  const mixed = crossEdges();
  t.ok(mixed >= 8, `mixing on the members' return made ${mixed} cross-partition edges at once`);
  for (const set of sets.values()) set.mix();
  t.equal(crossEdges(), mixed, 'a second return within the backoff does not churn the sets');
  for (let i = 0; i < 12; i++) {
    scheduler.runFor(15_000);
    for (const set of sets.values()) set.tick();
  }
  t.ok(crossEdges() >= 20, `rotation keeps mixing: ${crossEdges()} cross-partition edges after 3 minutes`);
});

t.test('peer set: rejects a degree that is not a positive integer', async (t) => {
  for (const degree of [0, -1, 1.5, NaN]) t.throws(() => setup(1, { degree }), RangeError, `degree ${degree}`);
});
