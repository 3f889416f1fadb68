/**
 * The lattice laws and delta-mutator correctness, for every CRDT type, on states reached by
 * random executions of 3 to 5 replicas (so dots are unique, as in a real cluster).
 */
import t from 'tap';
import fc from 'fast-check';
import { CausalContext, join } from '../../src/crdt/index.js';
import { ALL_SPECS, runExecution, stepsArb, type AnyCrdt, type TypeSpec } from '../helpers/crdt-specs.js';

const RUNS = Number(process.env['LASHUP_PROPERTY_RUNS'] ?? 200);

/** Three states picked from one random execution of `replicas` replicas. */
function triple(spec: TypeSpec): fc.Arbitrary<[AnyCrdt, AnyCrdt, AnyCrdt]> {
  return fc.integer({ min: 3, max: 5 }).chain((replicas) =>
    fc.tuple(stepsArb(spec, replicas), fc.nat(replicas - 1), fc.nat(replicas - 1), fc.nat(replicas - 1)).map(([steps, i, j, k]) => {
      const states = runExecution(spec, replicas, steps);
      return [states[i], states[j], states[k]] as [AnyCrdt, AnyCrdt, AnyCrdt];
    }),
  );
}

function eq(a: AnyCrdt, b: AnyCrdt): boolean {
  return a.equals(b) && JSON.stringify(a.value()) === JSON.stringify(b.value());
}

for (const spec of ALL_SPECS) {
  t.test(`${spec.name}: join is commutative, associative and idempotent`, async (t) => {
    fc.assert(
      fc.property(triple(spec), ([a, b, c]) => {
        if (!eq(join(a, b), join(b, a))) return false;
        if (!eq(join(join(a, b), c), join(a, join(b, c)))) return false;
        if (!eq(join(a, a), a)) return false;
        return true;
      }),
      { numRuns: RUNS },
    );
    t.pass(`${RUNS} random triples`);
  });

  t.test(`${spec.name}: join(state, delta) equals the mutated state, which meets the sequential spec`, async (t) => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 5 }).chain((replicas) => fc.tuple(fc.constant(replicas), stepsArb(spec, replicas), fc.nat(replicas - 1), spec.op)),
        ([replicas, steps, who, op]) => {
          const state = runExecution(spec, replicas, steps)[who] as AnyCrdt;
          const before = state.clone();
          const step = steps.length;
          const delta = spec.apply(state, `r${who}`, op, step);
          if (!eq(join(before, delta), state)) return false;
          const problem = spec.spec(before, state, op, step, `r${who}`);
          if (problem !== undefined) throw new Error(problem);
          // A delta is idempotent too: applying it again changes nothing.
          const again = state.clone();
          return again.join(delta).changes === 0 && eq(again, state);
        },
      ),
      { numRuns: RUNS },
    );
    t.pass(`${RUNS} random mutations`);
  });
}

for (const spec of ALL_SPECS) {
  t.test(`${spec.name}: repair by difference (unseenBy, removalsFor, context merge) equals the join`, async (t) => {
    fc.assert(
      fc.property(triple(spec), ([a, b]) => {
        const repaired = b.clone();
        const removals = a.removalsFor(b.liveContext());
        repaired.join(a.unseenBy(b.context));
        repaired.join(removals);
        repaired.context.merge(a.context);
        const expected = join(b, a);
        if (!eq(repaired, expected)) throw new Error(`repair ${JSON.stringify(repaired.canonical())} != join ${JSON.stringify(expected.canonical())}`);
        // Digests: equal states agree; the join differs from b exactly when the states differ.
        if (expected.digest() !== join(a, b).digest()) return false;
        if (b.equals(expected) !== (b.digest() === expected.digest())) return false;
        return true;
      }),
      { numRuns: RUNS },
    );
    t.pass(`${RUNS} random pairs`);
  });
}

t.test('removalsFor refuses a live-dot set that claims too many dots', async (t) => {
  const [spec] = ALL_SPECS;
  const state = (spec as TypeSpec).make();
  const huge = new CausalContext();
  huge.addUpTo('a', 2 ** 40);
  t.throws(() => state.removalsFor(huge), { code: 'LASHUP_ERR_CRDT_DECODE_LIMIT' });
});
