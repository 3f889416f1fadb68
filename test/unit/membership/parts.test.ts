/** The small pieces: broadcast queue, suspicion timeouts, awareness, config, table and registry. */
import t from 'tap';
import {
  Awareness,
  BroadcastQueue,
  expectedConfirmations,
  MEMBERSHIP_PROFILES,
  MemberRegistry,
  MembershipErrorCode,
  membershipConfig,
  retransmitLimit,
  Suspicion,
  suspicionMinMs,
  refusedSuspicionMinMs,
  suspicionTimeoutMs,
} from '../../../src/membership/index.js';
import { MemberState, MemberTable } from '../../../src/membership/table.js';

const bytes = (n: number, fill = 0): Uint8Array => new Uint8Array(n).fill(fill);

t.test('retransmit limit is mult * ceil(log10(N + 1))', async (t) => {
  t.equal(retransmitLimit(4, 1), 4);
  t.equal(retransmitLimit(4, 9), 4);
  t.equal(retransmitLimit(4, 10), 8);
  t.equal(retransmitLimit(4, 1000), 16);
  t.equal(retransmitLimit(4, 10_000), 20);
  t.equal(retransmitLimit(3, 0), 3, 'never below one round');
});

t.test('broadcast queue: least sent first, newest first among equals, limited, replaced by key', async (t) => {
  const q = new BroadcastQueue();
  q.enqueue('a', bytes(10, 1));
  q.enqueue('b', bytes(10, 2));
  q.enqueue('c', bytes(10, 3));
  t.ok(q.hasFresh);
  t.same(
    q.take(25, 3).map((b) => b[0]),
    [3, 2],
    'newest first, within the budget',
  );
  t.same(
    q.take(25, 3).map((b) => b[0]),
    [1, 3],
    'the unsent one first, then the least sent',
  );
  t.notOk(q.hasFresh, 'all sent at least once');
  q.enqueue('b', bytes(5, 4));
  t.equal(q.size, 3, 'replacing keeps one update per key');
  t.same(
    q.take(100, 3).map((b) => b[0]),
    [4, 1, 3],
    'the replacement is fresh; the stale b is gone',
  );
  t.same(
    q.take(100, 3).map((b) => b[0]),
    [4, 1],
    'c reached the limit of 3 and was dropped',
  );
  t.same(
    q.take(100, 3).map((b) => b[0]),
    [4],
    'a reached the limit',
  );
  t.same(q.take(100, 3), []);
  t.equal(q.size, 0);
  const counts: number[] = [];
  q.enqueue('leave', bytes(3), { onTransmit: (n) => counts.push(n) });
  q.take(10, 2);
  q.take(10, 2);
  t.same(counts, [1, 2], 'onTransmit sees every transmission');
  q.enqueue('x', bytes(2000));
  t.same(q.take(100, 5), [], 'an update larger than the budget waits');
  q.forget('x');
  t.equal(q.size, 0);
  t.same(q.take(0, 5), []);
});

t.test('broadcast queue groups: suspicions by different accusers coexist; alive supersedes them all', async (t) => {
  const q = new BroadcastQueue();
  q.enqueue('m\u0000a', bytes(4, 1), { group: 'm' });
  q.enqueue('m\u0000b', bytes(4, 2), { group: 'm' });
  q.enqueue('m\u0000a', bytes(4, 3), { group: 'm' });
  t.equal(q.size, 2, 'same accuser replaces, another accuser adds');
  q.enqueue('other', bytes(4, 9));
  q.enqueue('m', bytes(4, 4), { supersedes: true });
  t.equal(q.size, 2, 'alive about m retired both suspicions');
  t.same(
    q
      .take(100, 5)
      .map((b) => b[0])
      .sort(),
    [4, 9],
  );
  q.forget('m');
  t.same(
    q.take(100, 5).map((b) => b[0]),
    [9],
  );
});

t.test('suspicion timeout starts at max and shrinks to min with confirmations', async (t) => {
  t.equal(suspicionMinMs(4, 100, 1000), 8000);
  t.equal(suspicionMinMs(4, 5, 1000), 4000, 'log10 floor of 1');
  t.equal(expectedConfirmations(2, 100), 2);
  t.equal(expectedConfirmations(2, 3), 0, 'too few members to confirm');
  t.equal(expectedConfirmations(2, 4), 2);
  t.equal(suspicionTimeoutMs(0, 2, 8000, 48_000), 48_000);
  t.equal(suspicionTimeoutMs(2, 2, 8000, 48_000), 8000);
  const one = suspicionTimeoutMs(1, 2, 8000, 48_000);
  t.ok(one < 48_000 && one > 8000, `one confirmation: ${one}`);
  t.equal(suspicionTimeoutMs(0, 0, 8000, 48_000), 8000, 'no confirmations expected: min');
  const s = new Suspicion(3, 1000, 'a', 2, 8000, 48_000);
  t.equal(s.deadlineMs(), 49_000);
  t.notOk(s.confirm('a'), 'the starter does not confirm');
  t.ok(s.confirm('b'));
  t.notOk(s.confirm('b'), 'a confirmer counts once');
  t.equal(s.deadlineMs(), 1000 + one);
  t.ok(s.confirm('c'));
  t.notOk(s.confirm('d'), 'no more than expected');
  t.equal(s.confirmations, 2);
  t.equal(s.deadlineMs(), 9000);
});

t.test('a refused suspicion: shorter timeouts from the same start, never longer', async (t) => {
  t.equal(refusedSuspicionMinMs(2, 1000), 2000, 'no log10(N) factor');
  t.equal(refusedSuspicionMinMs(2, 1000), suspicionMinMs(2, 1, 1000));
  const s = new Suspicion(3, 1000, 'a', 2, 4600, 27_600);
  t.equal(s.deadlineMs(), 28_600);
  t.ok(s.shorten(2000, 12_000), 'shortened');
  t.equal(s.minMs, 2000);
  t.equal(s.maxMs, 12_000);
  t.equal(s.deadlineMs(), 13_000, 'counted from the start');
  t.notOk(s.shorten(2000, 12_000), 'the same again changes nothing');
  t.notOk(s.shorten(4600, 27_600), 'never lengthened');
  t.equal(s.deadlineMs(), 13_000);
  s.confirm('b');
  s.confirm('c');
  t.equal(s.deadlineMs(), 3000, 'confirmations bring it to the shorter minimum');
  const odd = new Suspicion(1, 0, 'a', 0, 4000, 24_000);
  t.ok(odd.shorten(3000, 2000), 'a max below the min is raised to it');
  t.equal(odd.maxMs, 3000);
});

t.test('once the last-chance ping is out, confirmations count no more', async (t) => {
  const s = new Suspicion(1, 0, 'a', 2, 2000, 12_000);
  t.ok(s.confirm('b'), 'counted before');
  s.lastChanceSent = true;
  t.notOk(s.confirm('c'), 'not after: re-arming for it would declare without waiting for the answer');
  t.equal(s.confirmations, 1);
});

t.test('awareness stretches timeouts and stays in bounds', async (t) => {
  const a = new Awareness(8);
  t.equal(a.scale(500), 500);
  a.apply(3);
  t.equal(a.health, 3);
  t.equal(a.scale(500), 2000);
  a.apply(100);
  t.equal(a.health, 7);
  a.apply(-100);
  t.equal(a.health, 0);
});

t.test('config: profiles are valid, overrides checked, errors name the field', async (t) => {
  for (const profile of ['lan', 'wan', 'local'] as const) t.same(membershipConfig(profile), MEMBERSHIP_PROFILES[profile]);
  t.equal(membershipConfig('lan', { probeIntervalMs: 2000 }).probeIntervalMs, 2000);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ probeIntervalMs: 0 }, /membership\.probeIntervalMs = 0/],
    [{ probeTimeoutMs: 1000 }, /below probeIntervalMs/],
    [{ indirectChecks: 1.5 }, /indirectChecks/],
    [{ reliableProbeFallback: 'yes' }, /true or false/],
    [{ maxPacketBytes: 100 }, /maxPacketBytes/],
    [{ joinRetryMaxMs: 10 }, /joinRetryMaxMs/],
    [{ probeIntervalMS: 5 }, /no such field/],
  ];
  for (const [override, pattern] of bad) {
    t.throws(() => membershipConfig('lan', override as never), { code: MembershipErrorCode.InvalidConfig, message: pattern }, JSON.stringify(override));
  }
  t.throws(() => membershipConfig('mars' as never), { code: MembershipErrorCode.InvalidConfig });
});

t.test('member table: invariants, references, bucket sums', async (t) => {
  const registry = new MemberRegistry();
  const a = new MemberTable(registry);
  const b = new MemberTable(registry);
  const names = Array.from({ length: 50 }, (_, i) => `m${i}`);
  names.forEach((n, i) => {
    a.add(n, `addr-${n}`, Uint8Array.of(i % 3), i, MemberState.Alive, 0);
  });
  [...names].reverse().forEach((n, i) => {
    b.add(n, `addr-${n}`, Uint8Array.of((49 - i) % 3), 49 - i, MemberState.Alive, 5);
  });
  t.equal(a.count, 50);
  t.equal(a.liveCount, 50);
  t.same([...a.bucketSums(8)], [...b.bucketSums(8)], 'same members, same sums, whatever the order');
  const id = a.find('m7');
  a.setState(id, MemberState.Suspect, 8, 10);
  t.not([...a.bucketSums(8)].join(), [...b.bucketSums(8)].join(), 'a state change shows');
  a.setState(id, MemberState.Dead, 8, 20);
  t.equal(a.liveCount, 49);
  t.equal(a.changedAtMs[id], 20);
  a.setAddress(id, 'elsewhere');
  t.equal(a.address(id), 'elsewhere');
  a.setMeta(id, Uint8Array.of(9));
  t.same(a.meta(id), Uint8Array.of(9));
  a.remove(id);
  t.equal(a.find('m7'), -1);
  t.equal(a.count, 49);
  for (let i = 0; i < a.count; i++) t.equal(a.getState(a.at(i)) !== 0, true);
  t.ok(b.has(b.find('m7')), 'the other table still holds it');
  a.clear();
  b.clear();
  t.equal(registry.names.size, 0, 'every name released');
  t.equal(registry.addresses.size, 0, 'every address released');
  t.equal(registry.metas.size, 0, 'every metadata released');
  const seeded = registry.seedSet(names.map((n) => ({ name: n, address: n })));
  t.ok(a.addIds(seeded.nameIds[0] as number, seeded.addressIds[0] as number, seeded.metaIds[0] as number, 0, MemberState.Alive, 0));
  t.notOk(a.addIds(seeded.nameIds[0] as number, seeded.addressIds[0] as number, seeded.metaIds[0] as number, 0, MemberState.Alive, 0), 'present');
  a.clear();
  t.equal(registry.names.size, 50, 'the seed set keeps its own references');
});
