/**
 * The encrypted UDP transport against replays (issue 14, item 5): the replay window and the
 * nonce memory agree, and a datagram is bound to its sender and its receiver. Each transport
 * gets a clock whose wall time the test sets, so "110 s later" takes no time.
 */
import { createSocket } from 'node:dgram';
import t, { type Test } from 'tap';
import { RealClock, type Clock } from '../../../src/common/index.js';
import { generateClusterKey, keyringFrom, parseHostPort, UdpTransport, type UdpStats } from '../../../src/net/index.js';
import { until } from '../../helpers/until.js';

class SetClock extends RealClock implements Clock {
  offsetMs = 0;
  override wallMs(): number {
    return Date.now() + this.offsetMs;
  }
}

const key = generateClusterKey();
const open = async (clock: Clock): Promise<{ udp: UdpTransport; got: { from: string; data: string }[] }> => {
  const udp = await UdpTransport.open({ host: '127.0.0.1', port: 0, keyring: keyringFrom([key]), label: 'udp-test', clock });
  const got: { from: string; data: string }[] = [];
  udp.onPacket((p) => got.push({ from: p.from, data: Buffer.from(p.data).toString() }));
  return { udp, got };
};

type Opened = Awaited<ReturnType<typeof open>>;
/** Three transports on one clock, closed when the test ends. */
const openThree = async (t: Test): Promise<[Opened, Opened, Opened]> => {
  const clock = new SetClock();
  const three: [Opened, Opened, Opened] = [await open(clock), await open(clock), await open(clock)];
  t.teardown(() => {
    for (const x of three) x.udp.close();
  });
  return three;
};

const raw = createSocket('udp4');
await new Promise<void>((resolve) => raw.bind(0, '127.0.0.1', () => resolve()));
t.teardown(() => raw.close());
/**
 * Delivers bytes to a transport from an unrelated socket (an attacker replaying a capture), and
 * waits until the transport has received them (so the test's clock changes come after).
 */
const inject = async (to: UdpTransport, datagram: Uint8Array): Promise<void> => {
  const { host, port } = parseHostPort(to.localAddress);
  const before = to.stats.packetsReceived;
  await new Promise<void>((resolve) => raw.send(datagram, port, host, () => resolve()));
  await until(() => to.stats.packetsReceived > before, 5000, 'the datagram arrived');
};
const counted = (u: UdpTransport, field: keyof UdpStats, atLeast: number): Promise<void> => until(() => u.stats[field] >= atLeast, 5000, `${field} >= ${atLeast}`);

t.test('a captured datagram replayed 110 s later is refused (nonces outlive the time window)', async (t) => {
  const clockA = new SetClock();
  const clockB = new SetClock();
  const a = await open(clockA);
  const b = await open(clockB);
  t.teardown(() => {
    a.udp.close();
    b.udp.close();
  });
  const at = (seconds: number): void => {
    clockA.offsetMs = seconds * 1000;
    clockB.offsetMs = seconds * 1000;
  };
  // Captured late in a nonce-memory period, with ordinary traffic after it (which is what
  // rotates the memory): before the fix the nonce was forgotten by +62 s of traffic while the
  // time window still accepted the datagram for 120 s.
  at(59);
  const captured = a.udp.seal(b.udp.localAddress, Buffer.from('ping'));
  await inject(b.udp, captured);
  await until(() => b.got.length === 1, 5000, 'delivered once');
  for (const s of [61, 90, 121, 150]) {
    at(s);
    await inject(b.udp, a.udp.seal(b.udp.localAddress, Buffer.from(`traffic at ${s}`)));
  }
  await until(() => b.got.length === 5, 5000, 'ordinary traffic delivered');
  at(100);
  await inject(b.udp, captured);
  at(169);
  await inject(b.udp, captured);
  await until(() => b.udp.stats.droppedReplay + b.udp.stats.droppedStale >= 2, 5000, 'both replays counted');
  t.equal(b.got.length, 5, 'the replays at +41 s and +110 s were refused');
  at(600);
  await inject(b.udp, captured);
  await counted(b.udp, 'droppedStale', 1);
  t.equal(b.got.length, 5, 'and long after, the time window refuses it');
  // Sent with a clock 50 s ahead (within the window), first seen now: it stays refused as a
  // replay for as long as its time is in the window, 110 s on.
  clockB.offsetMs = 1_000_000;
  clockA.offsetMs = 1_050_000;
  const ahead = a.udp.seal(b.udp.localAddress, Buffer.from('ahead'));
  await inject(b.udp, ahead);
  await until(() => b.got.length === 6, 5000, 'a datagram from a clock within the window is accepted');
  const replaysBefore = b.udp.stats.droppedReplay;
  clockA.offsetMs = 1_070_000;
  clockB.offsetMs = 1_070_000;
  await inject(b.udp, a.udp.seal(b.udp.localAddress, Buffer.from('traffic')));
  clockB.offsetMs = 1_105_000;
  await inject(b.udp, ahead);
  await counted(b.udp, 'droppedReplay', replaysBefore + 1);
  t.equal(b.got.length, 7, 'its replay 105 s later is still refused');
});

t.test('a datagram is bound to its receiver and its sender', async (t) => {
  const [a, b, c] = await openThree(t);
  const toB = a.udp.seal(b.udp.localAddress, Buffer.from('for b'));
  await inject(c.udp, toB);
  await counted(c.udp, 'droppedDecrypt', 1);
  t.equal(c.got.length, 0, 'another member does not accept a datagram addressed to b');
  await inject(a.udp, toB);
  await counted(a.udp, 'droppedDecrypt', 1);
  t.equal(a.got.length, 0, 'the sender does not accept its own datagram reflected back');
  await inject(a.udp, a.udp.seal(a.udp.localAddress, Buffer.from('self')));
  await counted(a.udp, 'droppedReflected', 1);
  t.equal(a.got.length, 0, 'a datagram claiming this node as its sender is dropped');
  await inject(b.udp, toB);
  await until(() => b.got.length === 1, 5000, 'b accepts it');
  t.same(b.got[0], { from: a.udp.localAddress, data: 'for b' }, 'from the authenticated sender, not the socket that replayed it');
  a.udp.send(b.udp.localAddress, Buffer.from('direct'));
  await until(() => b.got.length === 2, 5000, 'a normal send arrives');
  t.same(b.got[1], { from: a.udp.localAddress, data: 'direct' });
});

t.test('every datagram has a nonce of its own, across refills of the nonce pool, and each opens', async (t) => {
  const [a, b] = await openThree(t);
  // The pool holds 256 nonces: 600 datagrams run through it twice and into a third fill.
  const count = 600;
  const nonces = new Set<string>();
  const { host, port } = parseHostPort(b.udp.localAddress);
  for (let i = 0; i < count; i++) {
    const datagram = a.udp.seal(b.udp.localAddress, Buffer.from(`n${i}`));
    nonces.add(datagram.subarray(1, 13).toString('hex'));
    await new Promise<void>((resolve) => raw.send(datagram, port, host, () => resolve()));
  }
  t.equal(nonces.size, count, 'no nonce repeats');
  await until(() => b.got.length === count, 5000, 'all delivered');
  t.equal(b.udp.stats.droppedReplay, 0, 'none taken for a replay');
  t.same(
    b.got.slice(-2).map((g) => g.data),
    [`n${count - 2}`, `n${count - 1}`],
    'the payloads are intact',
  );
});

t.test('destinations: a bad address is refused every time, and a full cache keeps datagrams bound to their receiver', async (t) => {
  const [a, b, c] = await openThree(t);
  for (let i = 0; i < 2; i++) t.throws(() => a.udp.send('not-an-address', Buffer.from('x')), { code: 'LASHUP_ERR_NET_INVALID_ADDRESS' }, `refused (try ${i + 1})`);
  // More destinations than the cache holds (4,096): it is cleared and filled again.
  for (let i = 0; i < 5000; i++) a.udp.seal(`10.${(i >> 8) & 255}.${i & 255}.1:7946`, Buffer.from('x'));
  const toB = a.udp.seal(b.udp.localAddress, Buffer.from('for b'));
  await inject(c.udp, toB);
  await counted(c.udp, 'droppedDecrypt', 1);
  t.equal(c.got.length, 0, 'c does not accept a datagram sealed for b');
  a.udp.send(b.udp.localAddress, Buffer.from('direct'));
  a.udp.send(c.udp.localAddress, Buffer.from('to c'));
  await until(() => b.got.length === 1 && c.got.length === 1, 5000, 'sends after the refill arrive');
  t.same([b.got[0]?.data, c.got[0]?.data], ['direct', 'to c']);
});
