/**
 * Convergence under an unreliable network: 3 to 5 replicas apply random operations and ship
 * each delta to every other replica through a channel that loses, duplicates and reorders. At
 * every delivery each replica must match the reference model; after one full-state exchange all
 * replicas must be identical.
 */
import t from 'tap';
import fc from 'fast-check';
import { ALL_SPECS, checkAgainstHistory, recordOf, type AnyCrdt, type OpRecord, type TypeSpec } from '../helpers/crdt-specs.js';

const RUNS = Number(process.env['LASHUP_PROPERTY_RUNS'] ?? 200);

interface InFlight {
  to: number;
  delta: AnyCrdt;
  ops: number[];
}

function scenario(spec: TypeSpec) {
  return fc.record({
    replicas: fc.integer({ min: 3, max: 5 }),
    loss: fc.double({ min: 0, max: 0.5, noNaN: true }),
    duplication: fc.double({ min: 0, max: 0.3, noNaN: true }),
    actions: fc.array(
      fc.oneof(
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('op' as const), replica: fc.nat(4), op: spec.op }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat() }) },
      ),
      { maxLength: 60 },
    ),
    seed: fc.integer(),
    exchangeOrder: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
  });
}

/** A tiny deterministic generator for the channel's choices (the scenario's seed drives it). */
function channelRng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

for (const spec of ALL_SPECS) {
  t.test(`${spec.name}: replicas converge through lossy, duplicating, reordering delta delivery`, async (t) => {
    fc.assert(
      fc.property(scenario(spec), (s) => {
        const random = channelRng(s.seed);
        const states = Array.from({ length: s.replicas }, () => spec.make());
        const known = Array.from({ length: s.replicas }, () => new Set<number>());
        const records: OpRecord[] = [];
        const inFlight: InFlight[] = [];
        const check = (i: number, when: string): void => {
          const problem = checkAgainstHistory(states[i] as AnyCrdt, known[i] as Set<number>, records);
          if (problem !== undefined) throw new Error(`${spec.name} r${i} ${when}: ${problem}`);
        };
        s.actions.forEach((action, step) => {
          if (action.kind === 'op') {
            const replica = action.replica % s.replicas;
            const delta = spec.apply(states[replica] as AnyCrdt, `r${replica}`, action.op, step);
            records.push(recordOf(delta));
            const id = records.length - 1;
            (known[replica] as Set<number>).add(id);
            for (let to = 0; to < s.replicas; to++) {
              if (to === replica || random() < s.loss) continue;
              inFlight.push({ to, delta: delta.clone(), ops: [id] });
              if (random() < s.duplication) inFlight.push({ to, delta: delta.clone(), ops: [id] });
            }
          } else if (inFlight.length > 0) {
            // Deliver a random message: the queue order is not the send order.
            const [message] = inFlight.splice(action.pick % inFlight.length, 1) as [InFlight];
            (states[message.to] as AnyCrdt).join(message.delta);
            for (const id of message.ops) (known[message.to] as Set<number>).add(id);
            check(message.to, `after a delivery at step ${step}`);
          }
        });
        // One full-state exchange: every replica joins a snapshot of every other, in some order.
        const snapshots = states.map((x) => x.clone());
        const allKnown = new Set(known.flatMap((k) => [...k]));
        states.forEach((state, i) => {
          const order = [...snapshots.keys()].sort((a, b) => ((s.exchangeOrder[a] ?? 0) % 7) - ((s.exchangeOrder[b] ?? 0) % 7) || a - b);
          for (const j of order) if (j !== i) state.join(snapshots[j] as AnyCrdt);
          known[i] = new Set(allKnown);
          check(i, 'after the full exchange');
        });
        const first = states[0] as AnyCrdt;
        for (const other of states.slice(1)) {
          if (!first.equals(other)) throw new Error(`replicas differ: ${JSON.stringify(first.canonical())} vs ${JSON.stringify(other.canonical())}`);
          if (JSON.stringify(first.value()) !== JSON.stringify(other.value())) throw new Error('values differ');
        }
        return true;
      }),
      { numRuns: RUNS },
    );
    t.pass(`${RUNS} random scenarios converged`);
  });
}
