import t from 'tap';
import fc from 'fast-check';
import { CausalContext, CrdtError, checkActor, compareDots } from '../../../src/crdt/index.js';

t.test('dots in order compact into the vector; out-of-order dots wait in the cloud', async (t) => {
  const ctx = new CausalContext();
  ctx.add('a', 1);
  ctx.add('a', 2);
  ctx.add('a', 5);
  ctx.add('a', 4);
  t.same(ctx.vector(), [['a', 2]]);
  t.same(ctx.cloudDots(), [
    { actor: 'a', counter: 4 },
    { actor: 'a', counter: 5 },
  ]);
  t.equal(ctx.nextCounter('a'), 6, 'next counter is above the cloud too');
  t.equal(ctx.nextCounter('b'), 1);
  ctx.add('a', 3);
  t.same(ctx.vector(), [['a', 5]], 'the gap filled: the cloud is absorbed');
  t.same(ctx.representationSize(), { vectorEntries: 1, cloudDots: 0 });
  t.ok(ctx.has('a', 1) && ctx.has('a', 5));
  t.notOk(ctx.has('a', 6));
  t.notOk(ctx.has('b', 1));
  ctx.add('a', 2);
  t.equal(ctx.dotCount(), 5, 'adding a known dot changes nothing');
});

t.test('merge is a set union that stays compact', async (_t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 1, max: 12 })), { maxLength: 30 }),
      fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 1, max: 12 })), { maxLength: 30 }),
      (xs, ys) => {
        const x = CausalContext.of(xs.map(([actor, counter]) => ({ actor, counter })));
        const y = CausalContext.of(ys.map(([actor, counter]) => ({ actor, counter })));
        const merged = x.clone();
        merged.merge(y);
        const expected = new Set([...xs, ...ys].map(([a, c]) => `${a}:${c}`));
        const actual = new Set<string>();
        merged.forEachDot((a, c) => actual.add(`${a}:${c}`));
        if (actual.size !== expected.size || [...expected].some((d) => !actual.has(d))) return false;
        // Compact: no cloud dot at or just above its actor's frontier.
        const frontier = new Map(merged.vector());
        for (const d of merged.cloudDots()) if (d.counter <= (frontier.get(d.actor) ?? 0) + 1) return false;
        const other = y.clone();
        other.merge(x);
        return merged.equals(other) && merged.dotCount() === expected.size;
      },
    ),
  );
});

t.test('addUpTo, equality and JSON', async (t) => {
  const a = new CausalContext();
  a.addUpTo('x', 4);
  a.addUpTo('x', 2);
  a.add('y', 3);
  const b = CausalContext.of([1, 2, 3, 4].map((counter) => ({ actor: 'x', counter })));
  b.add('y', 3);
  t.ok(a.equals(b));
  t.same(a.toJSON(), { vv: { x: 4 }, cloud: { y: [3] } });
  b.add('y', 9);
  t.notOk(a.equals(b));
  const c = a.clone();
  c.add('z', 7);
  t.notOk(a.equals(c), 'differs in cloud actors');
  const d = a.clone();
  d.addUpTo('w', 1);
  t.notOk(a.equals(d), 'differs in vector actors');
  const e = new CausalContext();
  e.addUpTo('x', 3);
  e.add('y', 3);
  t.notOk(a.equals(e), 'differs in a frontier');
  t.ok(new CausalContext().isEmpty());
  t.notOk(a.isEmpty());
  const proto = new CausalContext();
  proto.add('__proto__', 1);
  t.same(Object.keys(proto.toJSON().vv), ['__proto__'], 'any actor name is a plain key');
  t.equal(compareDots({ actor: 'a', counter: 2 }, { actor: 'a', counter: 1 }) > 0, true);
});

t.test('merging a vector over a cloud drops the covered cloud dots', async (t) => {
  const a = new CausalContext();
  a.add('x', 3);
  a.add('x', 7);
  const b = new CausalContext();
  b.addUpTo('x', 5);
  a.merge(b);
  t.same(a.vector(), [['x', 5]]);
  t.same(a.cloudDots(), [{ actor: 'x', counter: 7 }]);
  const c = new CausalContext();
  c.addUpTo('x', 9);
  a.merge(c);
  t.same(a.representationSize(), { vectorEntries: 1, cloudDots: 0 });
});

t.test('actors are validated', async (t) => {
  t.throws(() => checkActor(''), CrdtError);
  t.throws(() => checkActor('x'.repeat(257)), /1 to 256 characters/);
  t.throws(() => checkActor(5), /not a valid actor/);
  t.doesNotThrow(() => checkActor('node-1'));
});
