import t from 'tap';
import { PeerManager } from '../../../src/daemon/peers.js';
import type { MemberMeta, Membership } from '../../../src/membership/index.js';
import type { KeepResult, NodeNetwork } from '../../../src/net/index.js';
import { SeededRng } from '../../../src/common/index.js';
import { Scheduler } from '../../../src/sim/index.js';

/** Members m0-m2 (masters) and a0-a19 (agents), all alive; keeps are answered by the test. */
function setup() {
  const scheduler = new Scheduler();
  const names = [...['m0', 'm1', 'm2'], ...Array.from({ length: 20 }, (_, i) => `a${i}`)];
  const metas = new Map<number, MemberMeta>();
  const members = names.map((name, i) => {
    metas.set(i, { role: name.startsWith('m') ? 'master' : 'agent', underlayIp: '10.0.0.1', version: '0.1.0', addrs: [`/ip4/10.0.0.1/tcp/${i + 1}/p2p/12D3KooW${name}`] });
    return { name, state: 'alive' as const, meta: Uint8Array.of(i) };
  });
  const listeners: ((e: unknown) => void)[] = [];
  const membership = {
    on: (l: (e: unknown) => void) => listeners.push(l),
    members: () => members,
    member: (name: string) => members.find((m) => m.name === name),
  } as unknown as Membership;
  const asks: { to: string; onLost: () => void; callback: (r: KeepResult) => void }[] = [];
  const released: string[] = [];
  const libp2p = {
    keep: (to: string, _essential: boolean, onLost: () => void, callback: (r: KeepResult) => void) => asks.push({ to, onLost, callback }),
    release: (to: string) => released.push(to),
  } as unknown as NodeNetwork;
  const manager = new PeerManager({
    name: 'a19',
    role: 'agent',
    membership,
    libp2p,
    meta: (bytes) => metas.get(bytes[0] as number),
    clock: scheduler.clock(),
    rng: new SeededRng(7),
    degree: 5,
    rotateIntervalMs: 0,
    retryBackoffMs: 10_000,
  });
  return { scheduler, manager, asks, released };
}

t.test('keeps are asked at most three at a time, masters first; each answer lets the next one go', async (t) => {
  const { scheduler, manager, asks } = setup();
  manager.start();
  scheduler.runFor(1);
  t.equal(manager.peerSet.names.length, 8, 'three masters and five agents chosen');
  t.same(
    asks.map((a) => /p2p\/12D3KooW(\w+)$/.exec(a.to)?.[1]),
    ['m0', 'm1', 'm2'],
    'only three asked at once, the masters',
  );
  asks[0]?.callback('kept');
  t.equal(asks.length, 4, 'an answer starts the next ask');
  asks[1]?.callback('failed');
  t.equal(asks.length, 4, 'after a failure, one at a time: nothing new while two are asked');
  asks[2]?.callback('kept');
  t.equal(asks.length, 6, 'an answer: three at a time again');
  let answered = 3;
  while (answered < asks.length && answered < 40) (asks[answered++] as { callback: (r: KeepResult) => void }).callback('kept');
  t.equal(asks.length - answered, 0, 'everything asked once the answers came');
  t.ok(asks.length >= 8 && asks.length <= 10, `every chosen peer asked once (asked ${asks.length})`);
  manager.stop();
});

t.test('a keep that succeeds after its peer was dropped is released', async (t) => {
  const { scheduler, manager, asks, released } = setup();
  manager.start();
  scheduler.runFor(1);
  const first = asks[0] as { to: string; callback: (r: KeepResult) => void };
  // The peer leaves the set while its keep is asked (here: refused elsewhere, so forgotten).
  const name = /p2p\/12D3KooW(\w+)$/.exec(first.to)?.[1] as string;
  (manager.peerSet as unknown as { kept: Map<string, boolean> }).kept.delete(name);
  first.callback('kept');
  t.same(released, [first.to]);
  manager.stop();
});

t.test('keeps failing in a row: one at a time, after a pause that grows; an answer ends both', async (t) => {
  const { scheduler, manager, asks } = setup();
  manager.start();
  scheduler.runFor(1);
  t.equal(asks.length, 3, 'three asked at once');
  asks[0]?.callback('failed');
  t.equal(asks.length, 3, 'after a failure, one keep at a time (two are still being asked)');
  t.equal(manager.stats.keepBackoffs, 0, 'no pause after a single failure');
  asks[1]?.callback('failed');
  asks[2]?.callback('failed');
  t.equal(manager.stats.keepBackoffs, 2, 'the second and third failures in a row paused');
  t.equal(asks.length, 3, 'nothing asked during the pause');
  // The third failure in a row pauses 2 s, jittered to 1-3 s.
  scheduler.runFor(999);
  t.equal(asks.length, 3, 'still paused before 1 s');
  scheduler.runFor(2100);
  t.equal(asks.length, 4, 'after the pause, one keep');
  asks[3]?.callback('failed');
  scheduler.runFor(1999);
  t.equal(asks.length, 4, 'the fourth failure pauses longer (4 s, at least 2 s)');
  scheduler.runFor(4100);
  t.equal(asks.length, 5, 'then one keep again');
  asks[4]?.callback('kept');
  t.equal(asks.length, 8, 'an answer ends the pause: three at a time again');
  // Failures without end: the pause stops growing at 8 s (12 s with its jitter).
  for (let i = 5; i < 8; i++) asks[i]?.callback('failed');
  for (let round = 0; round < 8; round++) {
    const before = asks.length;
    scheduler.runFor(12_001);
    t.equal(asks.length, before + 1, `failure ${round + 4} in a row: the next keep within 12 s`);
    asks[asks.length - 1]?.callback('failed');
  }
  manager.stop();
});

t.test('connected addresses: kept peers whose keep was answered, until their connection is lost', async (t) => {
  const { scheduler, manager, asks } = setup();
  manager.start();
  scheduler.runFor(1);
  t.same(manager.connectedAddresses(), [], 'none while keeps are asked');
  t.equal(manager.roundAddresses().length, 8, 'rounds go to the chosen peers meanwhile (their keeps are being asked)');
  const first = asks[0] as (typeof asks)[number];
  first.callback('kept');
  t.same(manager.connectedAddresses(), [first.to], 'the answered one');
  t.same(manager.roundAddresses(), [first.to], 'and rounds go to it alone');
  t.equal(manager.stats.established, 1);
  first.onLost();
  t.same(manager.connectedAddresses(), [], 'gone once its connection is lost');
  let answered = 1;
  while (answered < asks.length && answered < 40) (asks[answered++] as (typeof asks)[number]).callback('kept');
  t.equal(manager.connectedAddresses().length, manager.peerSet.names.length, 'every kept peer');
  t.notOk(manager.connectedAddresses().includes(first.to), 'but the lost one (avoided for its backoff)');
  manager.stop();
});
