import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { Packr } from 'msgpackr';
import { CrdtError, CrdtErrorCode, CRDT_FORMAT_VERSION, decodeCrdt, encodeCrdt, ORMap, EWFlag, LWWRegister, type CausalCrdt } from '../../../src/crdt/index.js';
import { vectorStates } from '../../helpers/crdt-vectors.js';
import { ALL_SPECS, runExecution, stepsArb } from '../../helpers/crdt-specs.js';

const vectors = JSON.parse(readFileSync(new URL('../../vectors/crdt-v1.json', import.meta.url), 'utf8')) as Record<string, string>;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const raw = new Packr({ useRecords: false });

t.test('committed wire vectors: encoding is unchanged and decodes to the same states', async (t) => {
  const states = vectorStates();
  t.same(Object.keys(vectors).sort(), Object.keys(states).sort(), 'one vector per state');
  for (const [name, state] of Object.entries(states)) {
    t.equal(hex(encodeCrdt(state)), vectors[name], `${name} encodes to its committed bytes`);
    const decoded = decodeCrdt(bytes(vectors[name] as string));
    t.ok(decoded.equals(state), `${name} decodes to the state it was made from`);
  }
});

t.test('bytes from before object keys were sorted still decode, to the sorted form', async (t) => {
  // The lww vector as encoded before values were canonical: its object listed keys ip, up, n.
  const legacy = decodeCrdt(bytes('9401039292a66e6f64652d61019094000192cb431828906079000000de0003a26970aa3139382e31382e302e31a27570c3a16ecbc00c000000000000'));
  t.ok(legacy.equals(vectorStates()['lww'] as CausalCrdt<unknown, unknown>), 'the same state as the current vector');
  t.same(Object.keys(legacy.value() as object), ['ip', 'n', 'up'], 'read back with sorted keys');
  t.equal(hex(encodeCrdt(legacy)), vectors['lww'], 're-encoded canonically');
});

t.test('round trips for every type, and encoding is canonical', async (t) => {
  for (const spec of ALL_SPECS) {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(fc.constant(n), stepsArb(spec, n), fc.nat(n - 1))),
        ([n, steps, who]) => {
          const state = runExecution(spec, n, steps)[who] as CausalCrdt<unknown, unknown>;
          const encoded = encodeCrdt(state);
          const decoded = decodeCrdt(encoded);
          return decoded.equals(state) && JSON.stringify(decoded.value()) === JSON.stringify(state.value()) && hex(encodeCrdt(decoded)) === hex(encoded);
        },
      ),
      { numRuns: 150 },
    );
  }
  t.pass('every type round-trips');
});

t.test('a decoded state works: it joins, mutates, keeps its index', async (t) => {
  const m = new ORMap();
  for (let i = 0; i < 40; i++) m.mutate('a', (x) => x.map(`k${i}`, (e) => e.lww('v').write({ ts: i, actor: 'a' }, i)));
  const copy = decodeCrdt(encodeCrdt(m)) as ORMap;
  const delta = m.remove('a', 'k5');
  t.equal(copy.join(delta).changes, 1);
  t.ok(copy.equals(m));
  copy.mutate('b', (x) => x.remove('k6'));
  t.notOk(copy.has('k6'));
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof CrdtError)) throw new Error(`not a CrdtError: ${String(err)}`);
    return err.code;
  }
}

t.test('arbitrary bytes give only typed errors', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (input) => {
      try {
        decodeCrdt(input);
        return true;
      } catch (err) {
        return err instanceof CrdtError;
      }
    }),
    { numRuns: 5000 },
  );
  t.pass('5,000 random inputs');
});

t.test('valid encodings with flipped, dropped or inserted bytes give a state or a typed error', async (t) => {
  const samples = Object.values(vectors).map(bytes);
  fc.assert(
    fc.property(
      fc.nat(samples.length - 1),
      fc.array(fc.tuple(fc.constantFrom('flip', 'drop', 'insert', 'truncate'), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      (which, edits) => {
        let input = Array.from(samples[which] as Uint8Array);
        for (const [edit, pos, value] of edits) {
          const at = input.length === 0 ? 0 : pos % input.length;
          if (edit === 'flip') input[at] = (input[at] ?? 0) ^ (1 << (value % 8));
          else if (edit === 'drop') input.splice(at, 1);
          else if (edit === 'insert') input.splice(at, 0, value);
          else input = input.slice(0, at);
        }
        try {
          const state = decodeCrdt(Uint8Array.from(input));
          // Whatever decoded must be a usable, re-encodable state.
          decodeCrdt(encodeCrdt(state));
          return true;
        } catch (err) {
          return err instanceof CrdtError;
        }
      },
    ),
    { numRuns: 5000 },
  );
  t.pass('5,000 corrupted messages');
});

t.test('structurally wrong messages are refused with the place named', async (t) => {
  const enc = (value: unknown): Uint8Array => raw.pack(value);
  const ctx = [['a', 2], []];
  const cases: [string, unknown, RegExp][] = [
    ['not an array', { version: 1 }, /expected an array/],
    ['no version', ['x'], /expected a format version/],
    ['short', [1, 1], /expected \[version, kind, context, store\]/],
    ['bad kind', [1, 99, ctx, []], /expected a kind tag/],
    ['context not a pair', [1, 1, [[]], []], /expected \[vector, cloud\]/],
    ['odd vector', [1, 1, [['a'], []], []], /groups of 2/],
    ['zero frontier', [1, 1, [['a', 0], []], []], /expected a counter/],
    ['actor twice', [1, 1, [['a', 1, 0, 2], []], []], /appears twice/],
    ['empty actor', [1, 1, [['', 1], []], []], /1 to 256 characters/],
    ['bad reference', [1, 1, [['a', 1], []], [5, 1]], /reference below 1/],
    ['float counter', [1, 1, [['a', 1], []], [0, 1.5]], /expected a counter/],
    ['dot outside context', [1, 1, ctx, [0, 3]], /not in the context/],
    ['dot twice', [1, 1, ctx, [0, 1, 0, 1]], /appears twice in the store/],
    ['bad cloud', [1, 1, [[], ['a', 3]], []], /expected an array/],
    ['bad marker', [1, 3, ctx, [0, 1, [1], 'v']], /a marker is \[ts, actor\]/],
    ['negative ts', [1, 3, ctx, [0, 1, [-1, 0], 'v']], /marker timestamp/],
    ['marker ref', [1, 3, ctx, [0, 1, 4, 'v']], /marker or a reference/],
    ['value not plain', [1, 4, ctx, [0, 1, new Map([[1, 2]])]], /object keys must be strings/],
    ['set element twice', [1, 5, ctx, ['e', [0, 1], 0, [0, 2]]], /element "e" appears twice/],
    ['set element without dots', [1, 5, ctx, ['e', []]], /has no dots/],
    ['map entry twice', [1, 6, ctx, ['k', 1, [0, 1], 0, 1, [0, 2]]], /appears twice/],
    ['empty map entry', [1, 6, ctx, ['k', 1, []]], /is empty/],
    ['bad nested kind', [1, 6, ctx, ['k', 0, []]], /kind tag/],
  ];
  for (const [name, message, pattern] of cases) {
    const err = t.throws(() => decodeCrdt(enc(message)), `${name} is refused`) as CrdtError;
    t.equal(err.code, CrdtErrorCode.Decode, `${name}: ${err.message}`);
    t.match(err.message, pattern, name);
  }
  t.equal(
    codeOf(() => decodeCrdt(new Uint8Array(0))),
    CrdtErrorCode.Decode,
  );
  t.equal(
    codeOf(() => decodeCrdt('nope' as never)),
    CrdtErrorCode.Decode,
  );
  t.equal(
    codeOf(() => decodeCrdt(enc([1, 4, ctx, [0, 1, NaN]]))),
    CrdtErrorCode.Decode,
    'NaN values are refused',
  );
  t.equal(
    codeOf(() => decodeCrdt(bytes('92d4724092a161a1620102'))),
    CrdtErrorCode.Decode,
    'msgpackr records are not plain data',
  );
  t.equal(
    codeOf(() => decodeCrdt(bytes('d6ff00000001'))),
    CrdtErrorCode.Decode,
    'a msgpack timestamp is not a message',
  );
  const conflicted = decodeCrdt(enc([1, 3, ctx, [0, 1, [1, 0], 'x', 0, 2, 0, 'y']]));
  t.equal(conflicted.value(), 'y', 'a register holding two values under one marker decodes, and reads the greater value');
});

t.test('future versions are refused as such', async (t) => {
  const err = t.throws(() => decodeCrdt(raw.pack([CRDT_FORMAT_VERSION + 1, 1, [[], []], []]))) as CrdtError;
  t.equal(err.code, CrdtErrorCode.UnsupportedVersion);
  t.match(err.message, /version 2 is not supported; this build reads version 1/);
});

t.test('limits: bytes, entries and depth', async (t) => {
  const big = new ORMap();
  for (let i = 0; i < 100; i++) big.mutate('a', (m) => m.lww(`k${i}`).write({ ts: 1, actor: 'a' }, 'x'.repeat(20)));
  const encoded = encodeCrdt(big);
  t.equal(
    codeOf(() => decodeCrdt(encoded, { maxBytes: 100 })),
    CrdtErrorCode.DecodeLimit,
  );
  t.equal(
    codeOf(() => decodeCrdt(encoded, { maxEntries: 50 })),
    CrdtErrorCode.DecodeLimit,
  );
  t.ok(decodeCrdt(encoded, { maxBytes: encoded.byteLength }).equals(big));
  let deep: unknown = 'leaf';
  for (let i = 0; i < 20; i++) deep = [deep];
  const nested = new LWWRegister();
  nested.write('a', { ts: 1, actor: 'a' }, deep);
  t.equal(
    codeOf(() => decodeCrdt(encodeCrdt(nested), { maxDepth: 10 })),
    CrdtErrorCode.DecodeLimit,
  );
  t.ok(decodeCrdt(encodeCrdt(nested)).equals(nested));
  // msgpack nesting far deeper than any limit: refused without a crash.
  const tower = new Uint8Array(200_000).fill(0x91);
  t.equal(
    codeOf(() => decodeCrdt(tower)),
    CrdtErrorCode.Decode,
  );
  let veryDeep: unknown = 1;
  for (let i = 0; i < 40; i++) veryDeep = [veryDeep];
  t.equal(
    codeOf(() => decodeCrdt(raw.pack([1, 4, [['a', 1], []], [0, 1, veryDeep]]), { maxDepth: 100 })),
    CrdtErrorCode.Decode,
    'value depth limit',
  );
});

t.test('flags of both kinds survive a round trip with their semantics', async (t) => {
  const f = new EWFlag();
  f.enable('x');
  f.disable('x');
  const back = decodeCrdt(encodeCrdt(f));
  t.equal(back.kind, 'ewflag');
  t.equal(back.value(), false);
  t.ok(back.equals(f));
});
