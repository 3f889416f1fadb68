/**
 * Per-type operation generators and sequential specifications for the CRDT property tests.
 *
 * Each spec says how to make an empty state, which random operations exist, how to apply one as
 * a given actor (returning the delta), and what a single replica must read right after it: the
 * sequential specification the delta mutator is checked against.
 */
import fc from 'fast-check';
import { AWSet, DWFlag, EWFlag, LWWRegister, MVRegister, ORMap, plainToJson, type PlainValue, compareMarkers, type CausalCrdt, type LwwMarker } from '../../src/crdt/index.js';

export type AnyCrdt = CausalCrdt<unknown, unknown>;

export interface TypeSpec {
  readonly name: string;
  make(): AnyCrdt;
  readonly op: fc.Arbitrary<unknown>;
  /**
   * Applies `op` as `actor`; `step` is unique per operation in a run (LWW markers use it so no
   * two writes share a marker). Returns the delta.
   */
  apply(state: AnyCrdt, actor: string, op: unknown, step: number): AnyCrdt;
  /** Throws (via assert) when the value after the op breaks the sequential specification. */
  spec(before: AnyCrdt, after: AnyCrdt, op: unknown, step: number, actor: string): string | undefined;
}

const ELEMENTS = ['a', 'b', 'c', 'd'];
const KEYS = ['k1', 'k2', 'k3'];
const VALUES: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom('x', 'y', ''),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
  fc.dictionary(fc.constantFrom('p', 'q'), fc.integer({ min: 0, max: 2 }), { maxKeys: 2 }),
);

/** A marker unique per step, but not ordered like steps (so later writes may lose). */
export function markerFor(step: number, actor: string, skew: number): LwwMarker {
  return { ts: skew * 1000 + step, actor };
}

/** Equal as plain data: object key order does not matter (CRDTs hold objects with sorted keys). */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(plainToJson(a as PlainValue)) === JSON.stringify(plainToJson(b as PlainValue));
}

type FlagOp = 'enable' | 'disable';

export const ewFlagSpec: TypeSpec = {
  name: 'EWFlag',
  make: () => new EWFlag() as AnyCrdt,
  op: fc.constantFrom<FlagOp>('enable', 'disable'),
  apply: (state, actor, op) => (op === 'enable' ? (state as EWFlag).enable(actor) : (state as EWFlag).disable(actor)) as AnyCrdt,
  spec: (_b, after, op) => (after.value() === (op === 'enable') ? undefined : `flag reads ${String(after.value())} after ${String(op)}`),
};

export const dwFlagSpec: TypeSpec = {
  name: 'DWFlag',
  make: () => new DWFlag() as AnyCrdt,
  op: fc.constantFrom<FlagOp>('enable', 'disable'),
  apply: (state, actor, op) => (op === 'enable' ? (state as DWFlag).enable(actor) : (state as DWFlag).disable(actor)) as AnyCrdt,
  spec: (_b, after, op) => (after.value() === (op === 'enable') ? undefined : `flag reads ${String(after.value())} after ${String(op)}`),
};

interface LwwOp {
  value: unknown;
  skew: number;
}

export const lwwSpec: TypeSpec = {
  name: 'LWWRegister',
  make: () => new LWWRegister() as AnyCrdt,
  op: fc.record({ value: VALUES, skew: fc.integer({ min: 0, max: 3 }) }),
  apply: (state, actor, op, step) => {
    const { value, skew } = op as LwwOp;
    return (state as LWWRegister).write(actor, markerFor(step, actor, skew), value) as AnyCrdt;
  },
  spec: (before, after, op, step, actor) => {
    const { value, skew } = op as LwwOp;
    const previous = (before as LWWRegister).marker();
    const marker = markerFor(step, actor, skew);
    const expected = previous === undefined || compareMarkers(marker, previous) > 0 ? value : before.value();
    return same(after.value(), expected) ? undefined : `register reads ${JSON.stringify(after.value())}, expected ${JSON.stringify(expected)}`;
  },
};

export const mvSpec: TypeSpec = {
  name: 'MVRegister',
  make: () => new MVRegister() as AnyCrdt,
  op: VALUES,
  apply: (state, actor, op) => (state as MVRegister).write(actor, op) as AnyCrdt,
  spec: (_b, after, op) => (same(after.value(), [op]) ? undefined : `register reads ${JSON.stringify(after.value())} after writing ${JSON.stringify(op)}`),
};

interface SetOp {
  add: boolean;
  element: string;
}

export const awSetSpec: TypeSpec = {
  name: 'AWSet',
  make: () => new AWSet() as AnyCrdt,
  op: fc.record({ add: fc.boolean(), element: fc.constantFrom(...ELEMENTS) }),
  apply: (state, actor, op) => {
    const { add, element } = op as SetOp;
    return (add ? (state as AWSet).add(actor, element) : (state as AWSet).remove(actor, element)) as AnyCrdt;
  },
  spec: (before, after, op) => {
    const { add, element } = op as SetOp;
    const expected = new Set(before.value() as string[]);
    if (add) expected.add(element);
    else expected.delete(element);
    return same(after.value(), [...expected].sort()) ? undefined : `set reads ${JSON.stringify(after.value())}`;
  },
};

type MapOp =
  | { type: 'lww'; key: string; field: string; value: unknown; skew: number }
  | { type: 'flag'; key: string; on: boolean }
  | { type: 'set'; key: string; element: string; add: boolean }
  | { type: 'mv'; key: string; value: unknown }
  | { type: 'remove'; key: string }
  | { type: 'removeField'; key: string; field: string };

const FIELDS = ['f1', 'f2'];

export const mapOp: fc.Arbitrary<MapOp> = fc.oneof(
  fc.record({
    type: fc.constant('lww' as const),
    key: fc.constantFrom(...KEYS),
    field: fc.constantFrom(...FIELDS),
    value: VALUES,
    skew: fc.integer({ min: 0, max: 2 }),
  }),
  fc.record({ type: fc.constant('flag' as const), key: fc.constantFrom(...KEYS), on: fc.boolean() }),
  fc.record({ type: fc.constant('set' as const), key: fc.constantFrom(...KEYS), element: fc.constantFrom(...ELEMENTS), add: fc.boolean() }),
  fc.record({ type: fc.constant('mv' as const), key: fc.constantFrom(...KEYS), value: VALUES }),
  fc.record({ type: fc.constant('remove' as const), key: fc.constantFrom(...KEYS) }),
  fc.record({ type: fc.constant('removeField' as const), key: fc.constantFrom(...KEYS), field: fc.constantFrom(...FIELDS) }),
);

/**
 * Map operations touch several kinds and a nested map: `lww` writes field `field` of the nested
 * map at `key`; `flag` an enable-wins flag named `key`; `set` an add-wins set named `key`; `mv` a
 * multi-value register named `key`. One name thus holds several kinds at once, on purpose.
 */
export function applyMapOp(state: ORMap, actor: string, op: MapOp, step: number): ORMap {
  return state.mutate(actor, (m) => {
    switch (op.type) {
      case 'lww':
        m.map(op.key, (nested) => nested.lww(op.field).write(markerFor(step, actor, op.skew), op.value));
        return;
      case 'flag':
        if (op.on) m.ewflag(op.key).enable();
        else m.ewflag(op.key).disable();
        return;
      case 'set':
        if (op.add) m.awset(op.key).add(op.element);
        else m.awset(op.key).remove(op.element);
        return;
      case 'mv':
        m.mvreg(op.key).write(op.value);
        return;
      case 'remove':
        m.remove(op.key);
        return;
      case 'removeField':
        m.map(op.key, (nested) => nested.remove(op.field));
        return;
    }
  });
}

function entryValue(state: ORMap, name: string, kind: string): unknown {
  return state.entries().find((e) => e.name === name && e.kind === kind)?.value;
}

export const orMapSpec: TypeSpec = {
  name: 'ORMap',
  make: () => new ORMap() as AnyCrdt,
  op: mapOp,
  apply: (state, actor, op, step) => applyMapOp(state as ORMap, actor, op as MapOp, step) as AnyCrdt,
  spec: (beforeAny, afterAny, opAny, step, actor) => {
    const before = beforeAny as ORMap;
    const after = afterAny as ORMap;
    const op = opAny as MapOp;
    // Entries not named by the op never change.
    for (const e of before.entries()) {
      if (e.name === op.key) continue;
      if (!same(entryValue(after, e.name, e.kind), e.value)) return `entry ${e.name}/${e.kind} changed`;
    }
    switch (op.type) {
      case 'lww': {
        const nested = (entryValue(after, op.key, 'ormap') ?? {}) as Record<string, unknown>;
        const previous = (entryValue(before, op.key, 'ormap') ?? {}) as Record<string, unknown>;
        const beforeMap = before.entries().find((e) => e.name === op.key && e.kind === 'ormap');
        // The write wins unless an existing value carries a greater marker.
        const oldMarker = beforeMap === undefined ? undefined : nestedMarker(before, op.key, op.field);
        const marker = markerFor(step, actor, op.skew);
        const expected = oldMarker === undefined || compareMarkers(marker, oldMarker) > 0 ? op.value : previous[op.field];
        return same(nested[op.field], expected) ? undefined : `field ${op.key}.${op.field} reads ${JSON.stringify(nested[op.field])}`;
      }
      case 'flag':
        return entryValue(after, op.key, 'ewflag') === (op.on ? true : undefined) ? undefined : `flag ${op.key} wrong`;
      case 'set': {
        const expected = new Set((entryValue(before, op.key, 'awset') ?? []) as string[]);
        if (op.add) expected.add(op.element);
        else expected.delete(op.element);
        const got = entryValue(after, op.key, 'awset');
        return same(got ?? [], [...expected].sort()) ? undefined : `set ${op.key} reads ${JSON.stringify(got)}`;
      }
      case 'mv':
        return same(entryValue(after, op.key, 'mvreg'), [op.value]) ? undefined : `mv ${op.key} wrong`;
      case 'remove':
        return after.has(op.key) ? `${op.key} still present after remove` : undefined;
      case 'removeField': {
        const nested = entryValue(after, op.key, 'ormap') as Record<string, unknown> | undefined;
        return nested !== undefined && op.field in nested ? `${op.key}.${op.field} still present` : undefined;
      }
    }
  },
};

function nestedMarker(state: ORMap, key: string, field: string): LwwMarker | undefined {
  // Read the winning marker of a nested LWW field through a throwaway register built from the canonical form.
  const canonical = state.canonical().store as [string, string, unknown][];
  const entry = canonical.find(([name, kind]) => name === key && kind === 'ormap');
  if (entry === undefined) return undefined;
  const fields = entry[2] as [string, string, [string, number, number, string, unknown][]][];
  const reg = fields.find(([name, kind]) => name === field && kind === 'lww');
  if (reg === undefined) return undefined;
  let best: LwwMarker | undefined;
  for (const [, , ts, markerActor] of reg[2]) {
    const m = { ts, actor: markerActor };
    if (best === undefined || compareMarkers(m, best) > 0) best = m;
  }
  return best;
}

export const ALL_SPECS: readonly TypeSpec[] = [ewFlagSpec, dwFlagSpec, lwwSpec, mvSpec, awSetSpec, orMapSpec];

/** One step of a random execution over several replicas. */
export type Step = { kind: 'op'; replica: number; op: unknown } | { kind: 'sync'; from: number; to: number };

export function stepsArb(spec: TypeSpec, replicas: number, maxLength = 30): fc.Arbitrary<Step[]> {
  return fc.array(
    fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('op' as const), replica: fc.nat(replicas - 1), op: spec.op }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('sync' as const), from: fc.nat(replicas - 1), to: fc.nat(replicas - 1) }) },
    ),
    { maxLength },
  );
}

/** What one operation did, read off its delta: the dots it created and the dots its context holds. */
export interface OpRecord {
  created: string[];
  context: string[];
}

export function recordOf(delta: AnyCrdt): OpRecord {
  const created = delta.liveDots().map((d) => `${d.actor}:${d.counter}`);
  const context: string[] = [];
  delta.context.forEachDot((actor, counter) => context.push(`${actor}:${counter}`));
  return { created, context };
}

/**
 * The reference model: a replica that has seen a set of operations must hold exactly the dots
 * they created and none removed (a dot is removed when some seen operation's context holds it
 * without creating it), and its context must be the union of theirs. Returns a description of
 * the first difference, or undefined.
 */
export function checkAgainstHistory(state: AnyCrdt, known: ReadonlySet<number>, records: readonly OpRecord[]): string | undefined {
  const created = new Set<string>();
  const context = new Set<string>();
  for (const id of known) {
    const r = records[id] as OpRecord;
    for (const d of r.created) created.add(d);
    for (const d of r.context) context.add(d);
  }
  const removed = new Set<string>();
  for (const id of known) {
    const r = records[id] as OpRecord;
    const own = new Set(r.created);
    for (const d of r.context) if (!own.has(d)) removed.add(d);
  }
  const expectedLive = [...created].filter((d) => !removed.has(d)).sort();
  const actualLive = state
    .liveDots()
    .map((d) => `${d.actor}:${d.counter}`)
    .sort();
  if (JSON.stringify(expectedLive) !== JSON.stringify(actualLive)) {
    return `live dots ${JSON.stringify(actualLive)}, history says ${JSON.stringify(expectedLive)}`;
  }
  const actualContext: string[] = [];
  state.context.forEachDot((actor, counter) => actualContext.push(`${actor}:${counter}`));
  const expectedContext = [...context].sort();
  if (JSON.stringify(actualContext.sort()) !== JSON.stringify(expectedContext)) {
    return `context ${JSON.stringify(actualContext)}, history says ${JSON.stringify(expectedContext)}`;
  }
  return undefined;
}

/**
 * Runs steps; replica i acts as actor `r${i}`; syncs join whole states. After every step, every
 * replica is checked against the reference model (throws on a difference).
 */
export function runExecution(spec: TypeSpec, replicas: number, steps: readonly Step[]): AnyCrdt[] {
  const states = Array.from({ length: replicas }, () => spec.make());
  const known = Array.from({ length: replicas }, () => new Set<number>());
  const records: OpRecord[] = [];
  steps.forEach((step, index) => {
    if (step.kind === 'op') {
      const delta = spec.apply(states[step.replica] as AnyCrdt, `r${step.replica}`, step.op, index);
      records.push(recordOf(delta));
      (known[step.replica] as Set<number>).add(records.length - 1);
    } else if (step.from !== step.to) {
      (states[step.to] as AnyCrdt).join(states[step.from] as AnyCrdt);
      for (const id of known[step.from] as Set<number>) (known[step.to] as Set<number>).add(id);
    }
    states.forEach((state, i) => {
      const problem = checkAgainstHistory(state, known[i] as Set<number>, records);
      if (problem !== undefined) throw new Error(`${spec.name}, replica r${i} after step ${index} (${JSON.stringify(step)}): ${problem}`);
    });
  });
  return states;
}
