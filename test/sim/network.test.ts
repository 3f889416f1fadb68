/**
 * The simulated network behaves as configured: determinism by seed, loss, duplication,
 * reordering, latency, partitions (symmetric and one-way), crash and restart, streams.
 *
 * Statistical checks use a fixed seed (so they are deterministic) and a tolerance of 5 standard
 * deviations of the binomial count, stated at each assertion: a correct network fails such a check
 * with probability below one in a million for any seed.
 */
import t from 'tap';
import { Simulation, type SimHost, type SimStreamEnd, type StreamFailure } from '../../src/sim/index.js';
import { InvalidArgumentError } from '../../src/common/index.js';

function binomialSd(n: number, p: number): number {
  return Math.sqrt(n * p * (1 - p));
}

/** 30 hosts gossiping random packets under loss, duplication and reordering, and one stream pair. */
function gossipRun(seed: number): { digest: string; received: number; events: number } {
  const sim = new Simulation({
    seed,
    network: {
      defaultLink: {
        latency: { kind: 'normal', meanMs: 5, stdDevMs: 2, minMs: 1 },
        lossProbability: 0.1,
        duplicateProbability: 0.05,
        reorderProbability: 0.1,
        reorderDelayMs: 20,
      },
    },
  });
  const addresses = Array.from({ length: 30 }, (_, i) => `n${i}`);
  for (const address of addresses) {
    sim.network.addHost(address, (host) => {
      host.onPacket((from, data) => {
        if (data[0] === 1) host.sendPacket(from, Uint8Array.of(2, data[1] as number));
      });
      host.listen('echo', (stream) => stream.onMessage((data) => stream.send(data)));
      let n = 0;
      const tick = (): void => {
        host.sendPacket(host.rng.pick(addresses), Uint8Array.of(1, n++ & 255));
        host.clock.setTimer(10 + host.rng.int(20), tick);
      };
      host.clock.setTimer(host.rng.int(10), tick);
    });
  }
  const client = sim.network.host('n0');
  client.connect('n1', 'echo', (err, stream) => {
    if (err !== null || stream === undefined) return;
    for (let i = 0; i < 20; i++) stream.send(Uint8Array.of(i));
  });
  sim.network.crash('n5');
  sim.scheduler.after(500, () => sim.network.restart('n5'));
  sim.runFor(2000);
  return { digest: sim.traceDigest(), received: sim.network.totals().packetsReceived, events: sim.scheduler.eventsProcessed };
}

t.test('the same seed gives the same event trace; different seeds differ', async (t) => {
  const a = gossipRun(1234);
  const b = gossipRun(1234);
  t.equal(a.digest, b.digest, 'identical trace digest for one seed');
  t.equal(a.received, b.received);
  t.equal(a.events, b.events);
  t.ok(a.events > 5000, `a substantial run (${a.events} events)`);
  const digests = new Set([a.digest, gossipRun(1235).digest, gossipRun(99).digest, gossipRun(7).digest]);
  t.equal(digests.size, 4, 'four seeds, four different traces');
});

/** Sends `count` single packets from a to b, one per millisecond; returns what b received. */
function blast(sim: Simulation, from: SimHost, to: SimHost, count: number): Uint8Array[] {
  const got: Uint8Array[] = [];
  to.onPacket((_from, data) => got.push(data));
  for (let i = 0; i < count; i++) {
    sim.scheduler.after(i, () => {
      const data = new Uint8Array(4);
      new DataView(data.buffer).setUint32(0, i);
      from.sendPacket(to.address, data);
    });
  }
  sim.runFor(count + 1000);
  return got;
}

t.test('loss drops packets at the configured rate', async (t) => {
  for (const p of [0.05, 0.1, 0.3]) {
    const sim = new Simulation({ seed: 7, network: { defaultLink: { lossProbability: p } } });
    const a = sim.network.addHost('a');
    const b = sim.network.addHost('b');
    const n = 20_000;
    const got = blast(sim, a, b, n);
    const lost = n - got.length;
    const tolerance = 5 * binomialSd(n, p);
    t.ok(Math.abs(lost - n * p) < tolerance, `loss ${p}: lost ${lost}, expected ${n * p} ± ${tolerance.toFixed(0)} (5 sd)`);
    t.equal(a.counters.packetsLost, lost, 'every loss is counted at the sender');
    t.equal(b.counters.packetsReceived, got.length);
  }
});

t.test('duplication delivers extra copies at the configured rate', async (t) => {
  const p = 0.2;
  const sim = new Simulation({ seed: 8, network: { defaultLink: { duplicateProbability: p } } });
  const a = sim.network.addHost('a');
  const b = sim.network.addHost('b');
  const n = 20_000;
  const got = blast(sim, a, b, n);
  const extra = got.length - n;
  const tolerance = 5 * binomialSd(n, p);
  t.ok(Math.abs(extra - n * p) < tolerance, `duplicates ${extra}, expected ${n * p} ± ${tolerance.toFixed(0)} (5 sd)`);
  const ids = new Set(got.map((d) => new DataView(d.buffer, d.byteOffset).getUint32(0)));
  t.equal(ids.size, n, 'every packet arrived at least once, and only sent packets arrived');
});

t.test('reordering happens only when configured', async (t) => {
  const outOfOrder = (reorderProbability: number): number => {
    const sim = new Simulation({
      seed: 9,
      network: { defaultLink: { latency: { kind: 'constant', ms: 2 }, reorderProbability, reorderDelayMs: 10 } },
    });
    const a = sim.network.addHost('a');
    const b = sim.network.addHost('b');
    const got = blast(sim, a, b, 2000).map((d) => new DataView(d.buffer, d.byteOffset).getUint32(0));
    let inversions = 0;
    for (let i = 1; i < got.length; i++) if ((got[i] as number) < (got[i - 1] as number)) inversions++;
    return inversions;
  };
  t.equal(outOfOrder(0), 0, 'constant latency and no reordering keep order');
  t.ok(outOfOrder(0.3) > 100, 'a 30% reorder rate produces many inversions');
});

t.test('latency models stay in their bounds', async (t) => {
  const measure = (latency: Parameters<Simulation['network']['setDefaultLink']>[0]['latency']): number[] => {
    const sim = new Simulation({ seed: 10, network: latency === undefined ? {} : { defaultLink: { latency } } });
    const a = sim.network.addHost('a');
    const b = sim.network.addHost('b');
    // One packet every 100 ms, longer than any latency here, tagged with its index.
    const sent: number[] = [];
    const arrivals: number[] = [];
    b.onPacket((_f, data, at) => arrivals.push(at - (sent[data[0] as number] as number)));
    for (let i = 0; i < 200; i++) {
      sim.scheduler.after(i * 100, () => {
        sent[i % 256] = sim.nowMs();
        a.sendPacket('b', Uint8Array.of(i % 256));
      });
    }
    sim.runFor(200 * 100 + 1000);
    return arrivals;
  };
  const uniform = measure({ kind: 'uniform', minMs: 3, maxMs: 7 });
  t.ok(
    uniform.every((d) => d >= 3 && d <= 7),
    'uniform within [3, 7]',
  );
  const constant = measure({ kind: 'constant', ms: 4 });
  t.ok(
    constant.every((d) => d === 4),
    'constant is constant',
  );
  const normal = measure({ kind: 'normal', meanMs: 20, stdDevMs: 5, minMs: 12 });
  t.ok(
    normal.every((d) => d >= 12),
    'normal clamped at its minimum',
  );
  const mean = normal.reduce((s, d) => s + d, 0) / normal.length;
  t.ok(Math.abs(mean - 20) < 2, `normal mean ${mean.toFixed(2)} near 20`);
  const tail = measure({ kind: 'exponential', minMs: 1, meanExtraMs: 4 });
  t.ok(
    tail.every((d) => d >= 1),
    'exponential never below its minimum',
  );
  t.ok(Math.max(...tail) > 8, 'exponential has a tail');
});

t.test('invalid link settings are refused with the field named', async (t) => {
  const sim = new Simulation({ seed: 1 });
  sim.network.addHost('a');
  t.throws(() => sim.network.setDefaultLink({ lossProbability: 1.5 }), InvalidArgumentError);
  t.throws(() => sim.network.setLink('a', '*', { duplicateProbability: -0.1 }), /duplicateProbability/);
  t.throws(() => sim.network.setDefaultLink({ reorderDelayMs: -1 }), /reorderDelayMs/);
  t.throws(() => sim.network.setDefaultLink({ latency: { kind: 'uniform', minMs: 5, maxMs: 1 } }), /maxMs/);
  t.throws(() => sim.network.setDefaultLink({ latency: { kind: 'constant', ms: NaN } }), /latency\.ms/);
  t.throws(() => sim.network.setDefaultLink({ latency: { kind: 'normal', meanMs: 1, stdDevMs: -1 } }), /stdDevMs/);
  t.throws(() => sim.network.setDefaultLink({ latency: { kind: 'normal', meanMs: 1, stdDevMs: 1, minMs: -3 } }), /minMs/);
  t.throws(() => sim.network.setDefaultLink({ latency: { kind: 'exponential', minMs: 1, meanExtraMs: -2 } }), /meanExtraMs/);
  t.throws(() => sim.network.setDefaultLink({ latency: { kind: 'gaussian' } as unknown as { kind: 'constant'; ms: number } }), /one of constant, uniform, normal, exponential/);
  t.throws(() => new Simulation({ seed: 1, network: { defaultLink: { lossProbability: NaN } } }), /lossProbability/);
  t.throws(() => sim.network.addHost('a'), /already exists/);
  t.throws(() => sim.network.host('nope'), /no host "nope"/);
});

t.test('per-link overrides: pair, from-any, any-to, default', async (t) => {
  const sim = new Simulation({ seed: 11 });
  const [a, b, c] = ['a', 'b', 'c'].map((x) => sim.network.addHost(x)) as [SimHost, SimHost, SimHost];
  sim.network.setLink('a', '*', { latency: { kind: 'constant', ms: 10 } });
  sim.network.setLink('*', 'c', { latency: { kind: 'constant', ms: 30 } });
  sim.network.setLink('a', 'c', { latency: { kind: 'constant', ms: 50 } });
  t.same(sim.network.link(a, b).latency, { kind: 'constant', ms: 10 });
  t.same(sim.network.link(b, c).latency, { kind: 'constant', ms: 30 });
  t.same(sim.network.link(a, c).latency, { kind: 'constant', ms: 50 });
  t.same(sim.network.link(b, a).latency, { kind: 'constant', ms: 0.5 });
  sim.network.clearLinks();
  t.same(sim.network.link(a, c).latency, { kind: 'constant', ms: 0.5 });
  t.equal(sim.network.hasHost('a'), true);
  t.equal(sim.network.hosts().length, 3);
});

t.test('a symmetric partition blocks both ways; outsiders reach both sides; heal restores', async (t) => {
  const sim = new Simulation({ seed: 12 });
  const names = ['a1', 'a2', 'b1', 'b2', 'x'];
  const got = new Map<string, string[]>();
  for (const name of names) {
    const host = sim.network.addHost(name);
    got.set(name, []);
    host.onPacket((from) => got.get(name)?.push(from));
  }
  const sendAll = (): void => {
    for (const from of names) for (const to of names) if (from !== to) sim.network.host(from).sendPacket(to, Uint8Array.of(0));
    sim.runFor(10);
  };
  sim.network.partition([
    ['a1', 'a2'],
    ['b1', 'b2'],
  ]);
  t.equal(sim.network.isBlocked('a1', 'b1'), true);
  t.equal(sim.network.isBlocked('b2', 'a2'), true);
  t.equal(sim.network.isBlocked('a1', 'a2'), false);
  t.equal(sim.network.isBlocked('x', 'a1'), false);
  sendAll();
  t.same(got.get('a1')?.sort(), ['a2', 'x']);
  t.same(got.get('b1')?.sort(), ['b2', 'x']);
  t.same(got.get('x')?.sort(), ['a1', 'a2', 'b1', 'b2']);
  t.equal(sim.network.host('a1').counters.packetsBlocked, 2);
  sim.network.heal();
  for (const list of got.values()) list.length = 0;
  sendAll();
  for (const name of names) t.equal(got.get(name)?.length, 4, `${name} hears everyone after heal`);
});

t.test('a one-way partition blocks one direction only', async (t) => {
  const sim = new Simulation({ seed: 13 });
  const a = sim.network.addHost('a');
  const b = sim.network.addHost('b');
  const atA: string[] = [];
  const atB: string[] = [];
  a.onPacket((from) => atA.push(from));
  b.onPacket((from) => atB.push(from));
  sim.network.partitionOneWay(['a'], ['b']);
  a.sendPacket('b', Uint8Array.of(1));
  b.sendPacket('a', Uint8Array.of(1));
  sim.runFor(10);
  t.same(atB, [], 'a -> b is dropped');
  t.same(atA, ['b'], 'b -> a passes');
  t.throws(() => sim.network.partitionOneWay(['a'], ['a']), /both sides/);
});

t.test('a crashed host receives nothing, runs no timer, until it restarts', async (t) => {
  const sim = new Simulation({ seed: 14, network: { defaultLink: { latency: { kind: 'constant', ms: 5 } } } });
  const log: string[] = [];
  const boots: number[] = [];
  const victim = sim.network.addHost('victim', (host) => {
    boots.push(host.epoch);
    host.onPacket((from, data) => log.push(`epoch${host.epoch}:${from}:${data[0]}`));
    host.clock.setTimer(50, () => log.push(`timer-epoch${host.epoch}`));
  });
  const sender = sim.network.addHost('sender');
  sender.sendPacket('victim', Uint8Array.of(1));
  sim.runFor(2); // packet 1 is in flight
  sim.network.crash('victim');
  t.equal(victim.up, false);
  sim.runFor(10);
  sender.sendPacket('victim', Uint8Array.of(2));
  sim.runFor(100);
  t.same(log, [], 'neither the in-flight nor the later packet, nor the timer, reached the crashed host');
  t.equal(victim.counters.packetsDroppedWhileDown, 2);
  t.throws(() => victim.sendPacket('sender', Uint8Array.of(0)), /down/);
  t.throws(() => victim.connect('sender', 'p', () => undefined), /down/);
  sim.network.crash('victim'); // crashing twice is harmless
  sim.network.restart('victim');
  t.same(boots, [0, 1], 'boot ran again with a new epoch');
  sender.sendPacket('victim', Uint8Array.of(3));
  sim.runFor(100);
  t.same(log, ['epoch1:sender:3', 'timer-epoch1']);
  victim.restart(); // restart of a running host crashes it first
  t.same(boots, [0, 1, 2]);
});

t.test('packets to unknown addresses or without a handler are counted, not delivered', async (t) => {
  const sim = new Simulation({ seed: 15 });
  const a = sim.network.addHost('a');
  const b = sim.network.addHost('b');
  a.sendPacket('nobody', Uint8Array.of(1));
  a.sendPacket('b', Uint8Array.of(1));
  sim.runFor(10);
  t.equal(a.counters.packetsLost, 1);
  t.equal(b.counters.packetsUnhandled, 1);
  t.equal(sim.network.totals().packetsSent, 2);
});

interface StreamPair {
  sim: Simulation;
  client: SimHost;
  server: SimHost;
  serverEnds: SimStreamEnd[];
  serverGot: number[];
}

function streamPair(seed: number, lossProbability = 0): StreamPair {
  const sim = new Simulation({
    seed,
    network: { defaultLink: { latency: { kind: 'uniform', minMs: 1, maxMs: 20 }, lossProbability } },
  });
  const serverEnds: SimStreamEnd[] = [];
  const serverGot: number[] = [];
  const server = sim.network.addHost('server', (host) =>
    host.listen('p', (end) => {
      serverEnds.push(end);
      end.onMessage((data) => serverGot.push(data[0] as number));
    }),
  );
  const client = sim.network.addHost('client');
  return { sim, client, server, serverEnds, serverGot };
}

function connectNow(pair: StreamPair, to = 'server', protocol = 'p'): { end?: SimStreamEnd; failure?: StreamFailure | null } {
  const result: { end?: SimStreamEnd; failure?: StreamFailure | null } = {};
  pair.client.connect(to, protocol, (failure, end) => {
    result.failure = failure;
    if (end !== undefined) result.end = end;
  });
  pair.sim.runFor(5000);
  return result;
}

t.test('streams are reliable and ordered even over lossy, jittery links', async (t) => {
  const pair = streamPair(16, 0.2);
  const { end } = connectNow(pair);
  t.ok(end, 'connected');
  for (let i = 0; i < 200; i++) end?.send(Uint8Array.of(i));
  pair.sim.runFor(10_000);
  t.same(
    pair.serverGot,
    Array.from({ length: 200 }, (_, i) => i),
    'all 200 messages, in order',
  );
  t.equal(pair.client.counters.streamMessagesSent, 200);
  t.equal(pair.server.counters.streamMessagesReceived, 200);
});

t.test('connect failures: refused, unknown host, timeout across a partition', async (t) => {
  const pair = streamPair(17);
  t.equal(connectNow(pair, 'server', 'other').failure, 'refused', 'nobody listens on that protocol');
  t.equal(connectNow(pair, 'ghost').failure, 'unknown-host');
  pair.sim.network.partition([['client'], ['server']]);
  const before = pair.sim.nowMs();
  let failedAt = -1;
  pair.client.connect('server', 'p', (failure) => {
    failedAt = pair.sim.nowMs();
    t.equal(failure, 'timeout');
  });
  pair.sim.runFor(5000);
  t.equal(failedAt - before, pair.sim.network.connectTimeoutMs, 'fails after the connect timeout');
  pair.sim.network.heal();
  pair.sim.network.crash('server');
  t.equal(connectNow(pair).failure, 'refused', 'a down host refuses');
});

t.test('an abandoned connect never calls back and leaves no stream open', async (t) => {
  const pair = streamPair(18);
  let called = false;
  const abort = pair.client.connect('server', 'p', () => (called = true));
  pair.sim.runFor(2);
  abort();
  pair.sim.runFor(1000);
  t.equal(called, false);
  t.equal(pair.client.openStreamCount, 0);
  const abortEarly = pair.client.connect('ghost', 'p', () => (called = true));
  abortEarly();
  pair.sim.network.partition([['client'], ['server']]);
  pair.client.connect('server', 'p', () => (called = true))();
  pair.sim.runFor(5000);
  t.equal(called, false);
});

t.test('a stream breaks on both ends when a message meets a partition', async (t) => {
  const pair = streamPair(19);
  const { end } = connectNow(pair);
  const closes: (StreamFailure | undefined)[] = [];
  end?.onClose((f) => closes.push(f));
  pair.serverEnds[0]?.onClose((f) => closes.push(f));
  pair.sim.network.partition([['client'], ['server']]);
  t.equal(end?.send(Uint8Array.of(1)), false, 'the message is not delivered');
  t.equal(end?.open, false);
  t.equal(end?.send(Uint8Array.of(2)), false, 'a broken stream refuses further sends');
  pair.sim.runFor(5000);
  t.same(closes, ['timeout', 'timeout']);
  t.same(pair.serverGot, []);
});

t.test('a crash resets the peer; a graceful close arrives after pending messages', async (t) => {
  const pair = streamPair(20);
  const first = connectNow(pair).end;
  let serverClose: StreamFailure | undefined | null = null;
  pair.serverEnds[0]?.onClose((f) => (serverClose = f));
  for (let i = 0; i < 5; i++) first?.send(Uint8Array.of(i));
  first?.close();
  first?.close();
  t.equal(first?.send(Uint8Array.of(9)), false);
  pair.sim.runFor(1000);
  t.same(pair.serverGot, [0, 1, 2, 3, 4]);
  t.equal(serverClose, undefined, 'clean close');

  const second = connectNow(pair).end;
  let clientClose: StreamFailure | undefined | null = null;
  second?.onClose((f) => (clientClose = f));
  pair.sim.network.crash('server');
  pair.sim.runFor(1000);
  t.equal(clientClose, 'reset');
  t.equal(pair.client.openStreamCount, 0);
  pair.sim.network.restart('server');
  t.ok(connectNow(pair).end, 'after restart the server accepts again');
  pair.sim.network.crash('client');
  t.equal(pair.client.openStreamCount, 0, 'the crashed side forgets its streams');
});

t.test('messages and a close that arrive before handlers are set are not lost', async (t) => {
  const sim = new Simulation({ seed: 21 });
  let accepted: SimStreamEnd | undefined;
  sim.network.addHost('server', (host) => host.listen('p', (end) => (accepted = end)));
  const client = sim.network.addHost('client');
  client.connect('server', 'p', (_f, end) => {
    end?.send(Uint8Array.of(1));
    end?.send(Uint8Array.of(2));
    end?.close();
  });
  sim.runFor(100);
  const got: number[] = [];
  let closed = false;
  accepted?.onClose(() => (closed = true));
  t.equal(closed, false, 'the close waits behind unread messages');
  accepted?.onMessage((data) => got.push(data[0] as number));
  t.same(got, [1, 2]);
  t.equal(closed, true);
  let lateClose = false;
  accepted?.onClose(() => (lateClose = true));
  t.equal(lateClose, true, 'a handler set after the close hears it at once');
  sim.network.host('server').unlisten('p');
  let failure: StreamFailure | null | undefined;
  client.connect('server', 'p', (f) => (failure = f));
  sim.runFor(100);
  t.equal(failure, 'refused');
});

t.test('totals sum the counters of every host', async (t) => {
  const sim = new Simulation({ seed: 22 });
  const a = sim.network.addHost('a');
  sim.network.addHost('b', (h) => h.onPacket(() => undefined));
  a.sendPacket('b', new Uint8Array(10));
  a.sendPacket('b', new Uint8Array(20));
  sim.runFor(10);
  const totals = sim.network.totals();
  t.equal(totals.packetsSent, 2);
  t.equal(totals.bytesSent, 30);
  t.equal(totals.bytesReceived, 30);
});
