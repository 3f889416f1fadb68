/**
 * The peer-store shortcut (src/net/peer-store-shortcut.ts) on a recording fake store and a
 * virtual clock: which merges it answers from memory, and everything that makes it ask the
 * store again.
 */
import t from 'tap';
import { installPeerStoreShortcut, SHORTCUT_TTL_MS, type PeerStoreLike } from '../../../src/net/peer-store-shortcut.js';

interface Call {
  op: string;
  peer: string;
  data?: object;
}

/** A store that records its calls; merges resolve when `release` is called (or at once). */
function fakeStore(): { store: PeerStoreLike; calls: Call[]; hold: boolean; release: () => void } {
  const calls: Call[] = [];
  const held: (() => void)[] = [];
  const fake = {
    calls,
    hold: false,
    release: () => {
      for (const r of held.splice(0)) r();
    },
    store: undefined as unknown as PeerStoreLike,
  };
  let version = 0;
  fake.store = {
    merge: (id, data) => {
      calls.push({ op: 'merge', peer: id.toString(), data });
      const record = { peer: id.toString(), version: ++version };
      if (!fake.hold) return Promise.resolve(record);
      return new Promise((resolve) => held.push(() => resolve(record)));
    },
    save: (id, data) => {
      calls.push({ op: 'save', peer: id.toString(), data });
      return Promise.resolve({});
    },
    patch: (id, data) => {
      calls.push({ op: 'patch', peer: id.toString(), data });
      return Promise.resolve({});
    },
    delete: (id) => {
      calls.push({ op: 'delete', peer: id.toString() });
      return Promise.resolve();
    },
    consumePeerRecord: () => {
      calls.push({ op: 'consume', peer: '' });
      return Promise.resolve(true);
    },
  };
  return fake;
}

const peer = (name: string): { toString(): string } => ({ toString: () => name });
const merges = (calls: Call[]): number => calls.filter((c) => c.op === 'merge').length;

t.test('a protocol merge that held is answered from memory, with the record it returned', async (t) => {
  const fake = fakeStore();
  const stats = installPeerStoreShortcut(fake.store, () => 0);
  const first = await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  const second = await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  t.equal(merges(fake.calls), 1, 'the store saw one merge');
  t.same(second, first, 'the skipped merge returns the record of the one that ran');
  t.same(stats, { skipped: 1, merged: 1 });
  await fake.store.merge(peer('p1'), { protocols: ['/b/1'] });
  await fake.store.merge(peer('p2'), { protocols: ['/a/1'] });
  t.equal(merges(fake.calls), 3, 'another protocol, or another peer, goes to the store');
});

t.test('anything but one protocol always goes to the store', async (t) => {
  const fake = fakeStore();
  const stats = installPeerStoreShortcut(fake.store, () => 0);
  await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  const others: object[] = [
    { protocols: ['/a/1'], multiaddrs: [] },
    { protocols: ['/a/1', '/b/1'] },
    { protocols: [] },
    { metadata: { k: new Uint8Array(1) } },
    { tags: { t: { value: 1 } } },
    { protocols: [7] },
  ];
  for (const data of others) await fake.store.merge(peer('p1'), data);
  t.equal(merges(fake.calls), 1 + others.length, 'every other shape ran');
  t.equal(stats.skipped, 0);
  t.equal(stats.merged, 1, 'only the protocol-only merge is counted');
});

t.test('the shortcut lasts SHORTCUT_TTL_MS, then the store is asked again (refreshing the record)', async (t) => {
  const fake = fakeStore();
  let nowMs = 1000;
  installPeerStoreShortcut(fake.store, () => nowMs);
  await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  nowMs += SHORTCUT_TTL_MS - 1;
  await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  t.equal(merges(fake.calls), 1, 'still within the TTL');
  nowMs += 1;
  await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  t.equal(merges(fake.calls), 2, 'at the TTL the merge runs');
  await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  t.equal(merges(fake.calls), 2, 'and holds for another TTL');
});

t.test('a save, patch or delete of the peer, or any peer record, makes the next merge run', async (t) => {
  const changes: [string, (store: PeerStoreLike) => Promise<unknown>][] = [
    ['save', (s) => s.save(peer('p1'), {})],
    ['patch', (s) => s.patch(peer('p1'), { protocols: [] })],
    ['delete', (s) => s.delete(peer('p1'))],
    ['consumePeerRecord', (s) => s.consumePeerRecord(new Uint8Array(0))],
  ];
  for (const [name, change] of changes) {
    const fake = fakeStore();
    installPeerStoreShortcut(fake.store, () => 0);
    await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
    await fake.store.merge(peer('p2'), { protocols: ['/a/1'] });
    await change(fake.store);
    await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
    t.equal(merges(fake.calls), 3, `${name}: p1's merge ran again`);
    t.ok(
      fake.calls.some((c) => c.op === (name === 'consumePeerRecord' ? 'consume' : name)),
      `${name}: passed on to the store`,
    );
    await fake.store.merge(peer('p2'), { protocols: ['/a/1'] });
    t.equal(merges(fake.calls), name === 'consumePeerRecord' ? 4 : 3, `${name}: another peer's shortcut ${name === 'consumePeerRecord' ? 'is forgotten too' : 'stays'}`);
  }
});

t.test('a merge that was running when the record changed is not taken as holding', async (t) => {
  const fake = fakeStore();
  installPeerStoreShortcut(fake.store, () => 0);
  fake.hold = true;
  const running = fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  await fake.store.patch(peer('p1'), { protocols: [] });
  fake.release();
  await running;
  fake.hold = false;
  await fake.store.merge(peer('p1'), { protocols: ['/a/1'] });
  t.equal(merges(fake.calls), 2, 'the merge after the patch ran');
});
