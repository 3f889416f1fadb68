import t from 'tap';
import { Scheduler } from '../../../src/sim/index.js';
import { Packr, unpack } from 'msgpackr';
import { KvStore, KvErrorCode, kvConfig, decodeDelta, encodeDelta, type KvChange } from '../../../src/kv/index.js';
import { ORMap } from '../../../src/crdt/index.js';

function setup(options: { actor?: string; kv?: Parameters<typeof kvConfig>[0] } = {}) {
  const scheduler = new Scheduler({ epochMs: 1_700_000_000_000 });
  const published: Uint8Array[] = [];
  const store = new KvStore({ actor: options.actor ?? 'a', clock: scheduler.clock(), config: kvConfig(options.kv), publish: (m) => published.push(m) });
  return { scheduler, store, published };
}

t.test('update, get, keys, remove', async (t) => {
  const { store, published } = setup();
  const r = store.update('overlay/dcos', (m) => m.map('44.128.0.1', (e) => e.lww('agentIp').write(store.marker(), '192.0.2.1')));
  t.same(r.value, { '44.128.0.1': { agentIp: '192.0.2.1' } });
  t.same(store.get('overlay/dcos'), r.value);
  t.equal(r.seq, -1, 'no journal');
  t.equal(published.length, 1, 'the delta was published');
  store.update('overlay/dcos6', (m) => m.ewflag('on').enable());
  store.update('config', (m) => m.ewflag('on').enable());
  t.same(store.keys('overlay/'), ['overlay/dcos', 'overlay/dcos6']);
  t.same(store.keys(), ['config', 'overlay/dcos', 'overlay/dcos6']);
  const removed = store.remove('overlay/dcos');
  t.equal(removed.value, undefined);
  t.equal(store.get('overlay/dcos'), undefined);
  t.notOk(store.has('overlay/dcos'));
  t.same(store.keys('overlay/'), ['overlay/dcos6'], 'a removed key is not listed');
  t.equal(store.size, 3, 'but kept, with its context');
  t.equal(store.remove('overlay/dcos').seq, -1, 'removing an empty key does nothing');
  t.equal(store.remove('never').seq, -1);
  t.throws(() => store.update('', () => undefined), { code: KvErrorCode.InvalidKey });
  t.throws(() => store.update('x'.repeat(513), () => undefined), { code: KvErrorCode.InvalidKey });
});

t.test('markers are hybrid timestamps that never go backwards', async (t) => {
  const { store, scheduler } = setup();
  const a = store.marker();
  const b = store.marker();
  t.equal(a.actor, 'a');
  t.equal(a.ts, scheduler.wallMs() * 1000);
  t.equal(b.ts, a.ts + 1, 'same millisecond: one more');
});

t.test('subscriptions: initial keys, then one coalesced event per real change', async (t) => {
  const { store, scheduler } = setup();
  store.update('k1', (m) => m.lww('v').write(store.marker(), 1));
  store.update('other', (m) => m.lww('v').write(store.marker(), 1));
  const events: KvChange[] = [];
  const unsubscribe = store.subscribe('k', (e) => events.push(e));
  scheduler.runFor(1);
  t.same(events, [{ key: 'k1', old: undefined, new: { v: 1 }, initial: true }], 'initial snapshot of matching keys');
  events.length = 0;
  store.update('k1', (m) => m.lww('v').write(store.marker(), 2));
  store.update('k1', (m) => m.lww('v').write(store.marker(), 3));
  store.update('k2', (m) => m.lww('v').write(store.marker(), 1));
  scheduler.runFor(1);
  t.same(
    events,
    [
      { key: 'k1', old: { v: 1 }, new: { v: 3 }, initial: false },
      { key: 'k2', old: undefined, new: { v: 1 }, initial: false },
    ],
    'a burst is coalesced into one event per key',
  );
  events.length = 0;
  store.update('k1', (m) => m.lww('v').write(store.marker(), 4));
  store.update('k1', (m) => m.lww('v').write(store.marker(), 3));
  scheduler.runFor(1);
  t.same(events, [], 'changed and changed back within a turn: nothing');
  store.remove('k2');
  scheduler.runFor(1);
  t.same(events, [{ key: 'k2', old: { v: 1 }, new: undefined, initial: false }]);
  events.length = 0;
  const predicateEvents: string[] = [];
  store.subscribe(
    (key) => key.endsWith('1'),
    (e) => predicateEvents.push(`${e.key}:${String(e.initial)}`),
  );
  scheduler.runFor(1);
  unsubscribe();
  store.update('k1', (m) => m.lww('v').write(store.marker(), 9));
  scheduler.runFor(1);
  t.same(events, [], 'unsubscribed');
  t.same(predicateEvents, ['k1:true', 'k1:false'], 'predicate subscription: initial, then the change');
});

t.test('a remote delta that changes nothing fires nothing', async (t) => {
  const a = setup({ actor: 'a' });
  const b = setup({ actor: 'b' });
  const events: KvChange[] = [];
  b.store.subscribe('', (e) => events.push(e));
  b.scheduler.runFor(1);
  a.store.update('k', (m) => m.lww('v').write(a.store.marker(), 'x'));
  const message = a.published[0] as Uint8Array;
  b.store.receive(message, 'a');
  b.scheduler.runFor(1);
  t.equal(events.length, 1);
  b.store.receive(message, 'a');
  b.store.receive(message, 'a');
  b.scheduler.runFor(1);
  t.equal(events.length, 1, 'duplicates fire nothing');
  t.equal(b.store.stats.remoteDeltasApplied, 1);
  t.equal(b.store.stats.remoteDeltasRedundant, 2);
});

t.test('a delta carries its origin time: the receiver observes the propagation delay of deltas that change something', async (t) => {
  const a = setup({ actor: 'a' });
  const scheduler = new Scheduler({ epochMs: 1_700_000_000_000 });
  const delays: number[] = [];
  const b = new KvStore({ actor: 'b', clock: scheduler.clock(), config: kvConfig(), observePropagationMs: (ms) => delays.push(ms) });
  a.store.update('k', (m) => m.lww('v').write(a.store.marker(), 'x'));
  const message = a.published[0] as Uint8Array;
  t.equal(decodeDelta(message, 1 << 20).originWallMs, 1_700_000_000_000, "the origin's wall clock at publication");
  scheduler.runFor(40);
  b.receive(message, 'a');
  b.receive(message, 'a');
  scheduler.runFor(1);
  t.same(delays, [40], 'observed once: the duplicate changed nothing');
  // A delta from a node whose clock runs ahead: clamped to 0, not negative.
  const ahead = encodeDelta(
    'k2',
    (() => {
      const c = setup({ actor: 'c' });
      return c.store.update('k2', (m) => m.lww('v').write(c.store.marker(), 'y')).delta;
    })(),
    1_800_000_000_000,
  );
  b.receive(ahead, 'c');
  scheduler.runFor(1);
  t.same(delays, [40, 0]);
  // A four-item delta (from a build before the origin time) is still accepted, with no delay.
  const packr = new Packr({ useRecords: false });
  const raw = unpack(ahead) as unknown[];
  const old = setup({ actor: 'd' }).store.update('k3', (m) => m.ewflag('on').enable()).delta;
  b.receive(packr.pack([raw[0], raw[1], 'k3', (unpack(encodeDelta('k3', old)) as unknown[])[3]]), 'd');
  scheduler.runFor(1);
  t.same(b.get('k3'), { on: true }, 'applied');
  t.same(delays, [40, 0], 'without a delay');
  t.throws(() => decodeDelta(packr.pack([raw[0], raw[1], 'k', raw[3], -5]), 1 << 20), { code: KvErrorCode.Decode, message: /delta\[4\].*non-negative integer\), found number -5/ });
});

t.test('limits: key count and value size refuse the update and apply nothing', async (t) => {
  const { store } = setup({ kv: { maxKeys: 2, maxValueBytes: 4096 } });
  store.update('a', (m) => m.lww('v').write(store.marker(), 1));
  store.update('b', (m) => m.lww('v').write(store.marker(), 1));
  t.throws(() => store.update('c', (m) => m.lww('v').write(store.marker(), 1)), { code: KvErrorCode.TooManyKeys, message: /kv\.maxKeys/ });
  t.same(store.keys(), ['a', 'b']);
  store.update('a', (m) => m.lww('w').write(store.marker(), 'x'.repeat(2000)));
  t.throws(() => store.update('a', (m) => m.lww('z').write(store.marker(), 'y'.repeat(3000))), { code: KvErrorCode.ValueTooLarge, message: /above the limit of 4096/ });
  t.same(Object.keys(store.get('a') ?? {}), ['v', 'w'], 'the refused write left no trace');
  // Overwriting the large field with a small one is fine even near the limit.
  store.update('a', (m) => m.lww('w').write(store.marker(), 'small'));
  t.equal(store.get('a')?.['w'], 'small');
});

t.test('remote deltas for a new key beyond maxKeys are dropped and counted', async (t) => {
  const { store, scheduler } = setup({ kv: { maxKeys: 1 } });
  store.update('a', (m) => m.lww('v').write(store.marker(), 1));
  const other = setup({ actor: 'z' });
  other.store.update('c', (m) => m.lww('v').write(other.store.marker(), 1));
  store.receive(other.published[0] as Uint8Array, 'z');
  scheduler.runFor(1);
  t.equal(store.stats.keyLimitDrops, 1);
  t.same(store.keys(), ['a']);
});

t.test('inbound queue is bounded; bad deltas are counted and dropped', async (t) => {
  const { store, scheduler } = setup({ kv: { maxInboundDeltas: 3 } });
  const other = setup({ actor: 'b' });
  for (let i = 0; i < 5; i++) other.store.update(`k${i}`, (m) => m.lww('v').write(other.store.marker(), i));
  for (const m of other.published) store.receive(m, 'b');
  t.equal(store.stats.inboundDropped, 2);
  t.equal(store.inboundQueued, 3);
  scheduler.runFor(1);
  t.equal(store.keys().length, 3);
  store.receive(Uint8Array.of(1, 2, 3), 'evil');
  store.receive(new Uint8Array(0), 'evil');
  store.receive(
    encodeDelta('k', new ORMap()).map((b, i) => (i === 5 ? 0xff : b)),
    'evil',
  );
  scheduler.runFor(1);
  t.equal(store.stats.decodeErrors, 3);
});

t.test('LWW conflicts met in a join are counted, and the join completes', async (t) => {
  const { store, scheduler } = setup({ actor: 'a' });
  const b = setup({ actor: 'b' });
  const marker = { ts: 5, actor: 'x' };
  store.update('k', (m) => m.lww('v').write(marker, 'one'));
  b.store.update('k', (m) => m.lww('v').write(marker, 'two'));
  store.receive(b.published[0] as Uint8Array, 'b');
  scheduler.runFor(1);
  t.equal(store.stats.lwwConflicts, 1);
  t.equal(store.get('k')?.['v'], 'two', 'ties broken by value, the same everywhere');
});

t.test('a closed store refuses updates and ignores input', async (t) => {
  const { store } = setup();
  store.close();
  t.throws(() => store.update('k', () => undefined), { code: KvErrorCode.Closed });
  store.receive(Uint8Array.of(1), 'x');
  t.equal(store.inboundQueued, 0);
});
