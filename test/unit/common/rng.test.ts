import t from 'tap';
import fc from 'fast-check';
import { SeededRng, hashString32, randomlySeededRng } from '../../../src/common/index.js';

t.test('same seed, same sequence; different seeds, different sequences', async (t) => {
  const draw = (seed: number | string): number[] => {
    const rng = new SeededRng(seed);
    return Array.from({ length: 64 }, () => rng.nextUint32());
  };
  t.same(draw(42), draw(42));
  t.same(draw('cluster-a'), draw('cluster-a'));
  t.notSame(draw(42), draw(43));
  t.notSame(draw('a'), draw('b'));
});

t.test('xoshiro128** known answers from the reference implementation (state 1, 2, 3, 4)', async (t) => {
  const rng = SeededRng.fromState(1, 2, 3, 4);
  t.same([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()], [11520, 0, 5927040]);
  t.throws(() => SeededRng.fromState(0, 0, 0, 0), RangeError);
});

t.test('seeding is pinned: a change to these outputs changes every recorded seed', async (t) => {
  const rng = new SeededRng(1);
  t.same(
    Array.from({ length: 4 }, () => rng.nextUint32()),
    [2442144158, 3238099751, 3819917871, 2104621829],
  );
});

t.test('next() stays in [0, 1) and int() in range, with roughly uniform buckets', async (t) => {
  const rng = new SeededRng(7);
  const buckets = new Array<number>(10).fill(0);
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const x = rng.next();
    if (x < 0 || x >= 1) t.fail(`next() gave ${x}`);
    const k = rng.int(10);
    buckets[k] = (buckets[k] as number) + 1;
  }
  // Each bucket ~ Binomial(n, 0.1): sd = sqrt(n * 0.1 * 0.9) ~ 95; allow 5 sd.
  for (const count of buckets) t.ok(Math.abs(count - n / 10) < 5 * 95, `bucket count ${count} within 5 sd of ${n / 10}`);
});

t.test('int() rejects invalid bounds', async (t) => {
  const rng = new SeededRng(1);
  t.throws(() => rng.int(0), RangeError);
  t.throws(() => rng.int(1.5), RangeError);
  t.throws(() => rng.int(2 ** 33), RangeError);
  t.equal(rng.int(1), 0);
});

t.test('chance() honours its bounds without drawing', async (t) => {
  const a = new SeededRng(9);
  const b = new SeededRng(9);
  t.equal(a.chance(0), false);
  t.equal(a.chance(1), true);
  t.equal(a.chance(-1), false);
  t.equal(a.chance(2), true);
  t.equal(a.nextUint32(), b.nextUint32(), 'no draw was consumed');
  let hits = 0;
  for (let i = 0; i < 10_000; i++) if (a.chance(0.25)) hits++;
  // Binomial(10000, 0.25): sd ~ 43; allow 5 sd.
  t.ok(Math.abs(hits - 2500) < 5 * 43, `hits ${hits}`);
});

t.test('pick and shuffle', async (t) => {
  const rng = new SeededRng(3);
  t.throws(() => rng.pick([]), RangeError);
  t.equal(rng.pick(['only']), 'only');
  fc.assert(
    fc.property(fc.array(fc.integer()), fc.integer(), (items, seed) => {
      const shuffled = new SeededRng(seed).shuffle([...items]);
      return JSON.stringify([...shuffled].sort((x, y) => x - y)) === JSON.stringify([...items].sort((x, y) => x - y));
    }),
  );
});

t.test('forks are deterministic and independent of each other', async (t) => {
  const a = new SeededRng(5).fork('node-1');
  const b = new SeededRng(5).fork('node-1');
  t.equal(a.nextUint32(), b.nextUint32());
  const root = new SeededRng(5);
  const x = root.fork('same');
  const y = root.fork('same');
  t.not(x.nextUint32(), y.nextUint32(), 'two forks with one label from one parent still differ');
  const c = new SeededRng(5).fork('node-2');
  t.not(new SeededRng(5).fork('node-1').nextUint32(), c.nextUint32());
});

t.test('hashString32 is stable', async (t) => {
  t.equal(hashString32(''), 0x811c9dc5);
  t.equal(hashString32('a'), 0xe40c292c);
});

t.test('randomlySeededRng draws from the platform source', async (t) => {
  const a = randomlySeededRng();
  const b = randomlySeededRng();
  const seqA = Array.from({ length: 4 }, () => a.nextUint32());
  const seqB = Array.from({ length: 4 }, () => b.nextUint32());
  t.notSame(seqA, seqB);
});
