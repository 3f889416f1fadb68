/**
 * SWIM + Lifeguard on the simulated network, deterministic by seed: joins, failure detection,
 * refutation, leave, partitions and healing, metadata, loss, conflicts, restarts, reaping.
 */
import t from 'tap';
import { encodeMeta, decodeMeta, membershipConfig, refusedSuspicionMinMs, suspicionMinMs, type MembershipConfig, type MembershipEvent } from '../../src/membership/index.js';
import { createSimTransports, TransportError, TransportErrorCode, type StreamTransport } from '../../src/net/index.js';
import { SwimCluster } from '../../src/testing/index.js';

interface Logged {
  node: string;
  type: string;
  member: string;
  at: number;
}

function cluster(
  seed: number,
  count: number,
  options: { config?: MembershipConfig; loss?: number; meta?: (i: number) => Uint8Array; wrapStreams?: (i: number) => ((streams: StreamTransport) => StreamTransport) | undefined } = {},
) {
  const c = new SwimCluster({
    seed,
    config: options.config ?? membershipConfig('lan'),
    link: { latency: { kind: 'uniform', minMs: 0.2, maxMs: 2 }, lossProbability: options.loss ?? 0 },
  });
  const log: Logged[] = [];
  c.onEvent((node, event: MembershipEvent, at) => {
    if ('member' in event) log.push({ node, type: event.type, member: event.member.name, at });
    else log.push({ node, type: event.type, member: event.name, at });
  });
  for (let i = 0; i < count; i++) {
    const meta = options.meta?.(i);
    const wrapStreams = options.wrapStreams?.(i);
    c.addNode(`n${i}`, { ...(i === 0 ? {} : { seeds: ['n0'] }), ...(meta === undefined ? {} : { meta }), ...(wrapStreams === undefined ? {} : { wrapStreams }) });
  }
  return { c, log };
}

function everyoneSees(c: SwimCluster, member: string, state: string, observers = c.names().filter((n) => n !== member)): boolean {
  return observers.every((o) => c.view(o, member) === state);
}

/**
 * Cuts `member` off from everyone else until one of them suspects it (up to 10 s, in 10 ms
 * steps); the partition stays. Returns the first suspecter, or undefined.
 */
function isolateUntilSuspected(c: SwimCluster, member: string): string | undefined {
  const others = c.names().filter((n) => n !== member);
  c.sim.network.partition([[member], others]);
  let suspecter: string | undefined;
  for (let step = 0; step < 1000 && suspecter === undefined; step++) {
    c.runFor(10);
    suspecter = others.find((o) => c.view(o, member) === 'suspect');
  }
  return suspecter;
}

t.test('three nodes: join, see each other alive with metadata, one join event per pair', async (t) => {
  const meta = (i: number): Uint8Array => encodeMeta({ role: i === 0 ? 'master' : 'agent', underlayIp: `192.0.2.${i + 1}`, version: '0.1.0' });
  const { c, log } = cluster(1, 3, { meta });
  c.runFor(3000);
  t.ok(c.converged(), 'everyone alive everywhere');
  for (const a of c.names()) {
    for (const b of c.names()) {
      if (a === b) continue;
      const info = c.node(a).member(b);
      t.equal(info?.state, 'alive');
      t.equal(decodeMeta(info?.meta as Uint8Array).underlayIp, `192.0.2.${Number(b.slice(1)) + 1}`, `${a} knows ${b}'s underlay IP`);
      t.equal(log.filter((e) => e.node === a && e.member === b && e.type === 'join').length, 1, `${a} saw ${b} join once`);
    }
  }
  t.equal(log.filter((e) => e.type !== 'join').length, 0, 'nothing but joins');
  t.ok(c.node('n1').isJoined);
  t.equal(c.node('n1').liveCount, 3);
});

t.test('100 nodes join through one seed and converge', async (t) => {
  const { c, log } = cluster(2, 100);
  let convergedAt = -1;
  for (let s = 0; s < 30 && convergedAt < 0; s++) {
    c.runFor(1000);
    if (c.converged()) convergedAt = c.sim.nowMs();
  }
  t.ok(convergedAt > 0, `converged after ${convergedAt} ms`);
  t.equal(log.filter((e) => e.type === 'join').length, 100 * 99, 'each node saw each other node join exactly once');
  t.equal(log.filter((e) => e.type === 'suspect' || e.type === 'failed').length, 0, 'no suspicion while joining');
});

t.test('a killed node is declared failed by every other node, once', async (t) => {
  const { c, log } = cluster(3, 30);
  c.runFor(5000);
  t.ok(c.converged());
  const killedAt = c.sim.nowMs();
  c.crash('n7');
  c.runFor(60_000);
  const others = c.names().filter((n) => n !== 'n7');
  t.ok(everyoneSees(c, 'n7', 'dead', others), 'all others see n7 dead');
  const failures = log.filter((e) => e.type === 'failed' && e.member === 'n7');
  t.equal(failures.length, others.length, 'one failed event per observer');
  t.equal(new Set(failures.map((e) => e.node)).size, others.length);
  const firstSuspect = Math.min(...log.filter((e) => e.type === 'suspect' && e.member === 'n7').map((e) => e.at));
  t.ok(firstSuspect - killedAt < 3000, `suspected ${firstSuspect - killedAt} ms after the crash`);
  t.equal(log.filter((e) => (e.type === 'failed' || e.type === 'suspect') && e.member !== 'n7').length, 0, 'nobody else accused');
});

t.test('a crashed process (its port refuses) is failed sooner than a silent host, whose packets vanish', async (t) => {
  const config = membershipConfig('lan');
  const { c, log } = cluster(17, 100, { config });
  for (let s = 0; s < 30 && !c.converged(); s++) c.runFor(1000);
  t.ok(c.converged(), '100 nodes alive everywhere');
  const refusedTotal = (): number => c.names().reduce((sum, n) => sum + c.node(n).stats.suspicionsRefused, 0);
  const others = (member: string): string[] => c.names().filter((n) => n !== member && n !== 'n7');
  /** From the first suspicion of `member` to the first and to the last failed event about it. */
  const timeline = (member: string): { suspectedAt: number; firstFailedMs: number; lastFailedMs: number } => {
    const suspectedAt = Math.min(...log.filter((e) => e.type === 'suspect' && e.member === member).map((e) => e.at));
    const failed = log.filter((e) => e.type === 'failed' && e.member === member).map((e) => e.at);
    return { suspectedAt, firstFailedMs: Math.min(...failed) - suspectedAt, lastFailedMs: Math.max(...failed) - suspectedAt };
  };
  // The log-scaled minimum at these sizes: 2 * log10(100) * 1 s = 4 s (3.99 s at 99 live).
  const scaledMinMs = suspicionMinMs(config.suspicionMult, 99, config.probeIntervalMs);
  const refusedMinMs = refusedSuspicionMinMs(config.suspicionMult, config.probeIntervalMs);
  t.equal(refusedMinMs, 2000);

  c.crash('n7');
  c.runFor(30_000);
  t.ok(everyoneSees(c, 'n7', 'dead', others('n7')), 'every other node sees the crashed n7 dead');
  const crashed = timeline('n7');
  t.ok(refusedTotal() > 0, `${refusedTotal()} suspicions backed by a refusal`);
  t.ok(crashed.firstFailedMs >= refusedMinMs - 1, `no one failed n7 before the refused minimum (${crashed.firstFailedMs} ms after the first suspicion)`);
  t.ok(crashed.lastFailedMs < scaledMinMs, `failed everywhere ${crashed.lastFailedMs} ms after the first suspicion, under the log-scaled ${scaledMinMs} ms`);

  // n8's packets and connections vanish (a partition of one): timeouts, no refusal.
  const refusedBefore = refusedTotal();
  c.sim.network.partition([['n8'], others('n8').filter((n) => n !== 'n8')]);
  c.runFor(30_000);
  t.ok(everyoneSees(c, 'n8', 'dead', others('n8')), 'every other node sees the silent n8 dead');
  const silent = timeline('n8');
  t.equal(refusedTotal(), refusedBefore, 'no refusal from a silent host');
  t.ok(silent.firstFailedMs >= scaledMinMs - 1, `the silent n8 failed no sooner than the log-scaled minimum (${silent.firstFailedMs} ms after the first suspicion)`);
  t.equal(log.filter((e) => e.type === 'failed' && e.node !== 'n8' && e.member !== 'n7' && e.member !== 'n8').length, 0, 'nobody else failed');
});

t.test('a transiently slow node is suspected, refutes, and is never declared failed', async (t) => {
  const { c, log } = cluster(4, 12);
  c.runFor(5000);
  const before = c.node('n0').member('n3')?.incarnation as number;
  // Everything to and from n3 takes 600 ms one way for 3 s: its round trip (1.2 s) outlasts the
  // probe timeout and the probe interval, so probes of n3 fail and n3 is suspected; its
  // refutation still arrives within the suspicion timeout (2.2 s minimum at 12 members).
  const slow = { latency: { kind: 'constant', ms: 600 } } as const;
  c.sim.network.setLink('n3', '*', slow);
  c.sim.network.setLink('*', 'n3', slow);
  c.runFor(3000);
  c.sim.network.clearLinks();
  c.runFor(60_000);
  t.ok(
    log.some((e) => e.type === 'suspect' && e.member === 'n3'),
    'n3 was suspected',
  );
  t.equal(log.filter((e) => e.type === 'failed').length, 0, 'nobody was declared failed');
  t.ok(c.converged(), 'everyone alive everywhere again');
  const after = c.node('n0').member('n3')?.incarnation as number;
  t.ok(after > before, `n3 refuted with a higher incarnation (${before} -> ${after})`);
  t.ok(c.node('n3').stats.refutations > 0);
});

t.test('an accused member sends its refutation straight to every live member', async (t) => {
  // Gossip slowed to a crawl (no eager rounds, a round every 20 s): whatever reaches everyone at
  // once travelled directly.
  const config = membershipConfig('lan', { gossipEagerDelayMs: 0, gossipIntervalMs: 20_000 });
  const { c, log } = cluster(18, 40, { config });
  for (let s = 0; s < 120 && !c.converged(); s++) c.runFor(1000);
  t.ok(c.converged(), '40 nodes alive everywhere');
  const others = c.names().filter((n) => n !== 'n3');
  const before = c.node('n3').incarnation;
  // Cut n3 off long enough for a probe of it to fail, then let it hear the accusation.
  t.ok(isolateUntilSuspected(c, 'n3') !== undefined, 'n3 was suspected');
  c.sim.network.heal();
  let refutedAt = -1;
  // n3 hears of it from a suspecter's gossip round or probe (every 20 s at most).
  for (let step = 0; step < 30_000 && refutedAt < 0; step++) {
    c.runFor(1);
    if (c.node('n3').incarnation > before) refutedAt = c.sim.nowMs();
  }
  t.ok(refutedAt > 0, 'n3 refuted');
  const refuted = c.node('n3').incarnation;
  c.runFor(20);
  const heard = others.filter((o) => (c.node(o).member('n3')?.incarnation ?? -1) >= refuted);
  t.equal(heard.length, others.length, `every other member had the refutation 20 ms after it (${heard.length} of ${others.length})`);
  t.equal(c.node('n3').stats.directRefutations, others.length, 'one direct packet per live member');
  t.equal(log.filter((e) => e.type === 'failed').length, 0, 'nobody was declared failed');
});

t.test('a suspicion that runs out pings the member once more: a member that is up refutes in time', async (t) => {
  // No confirmations expected (the minimum timeout applies at once) and gossip slowed to a
  // crawl: the accused member hears of the suspicion only from the observer's last ping.
  // Seed 22: a run where n3 hears of the suspicion from nobody else in time (in most seeds the
  // observer's piggybacked news reaches it first).
  const config = membershipConfig('lan', { gossipEagerDelayMs: 0, gossipIntervalMs: 20_000, suspicionConfirmations: 0 });
  const { c, log } = cluster(22, 20, { config });
  for (let s = 0; s < 120 && !c.converged(); s++) c.runFor(1000);
  t.ok(c.converged(), '20 nodes alive everywhere');
  const y = isolateUntilSuspected(c, 'n3');
  t.ok(y !== undefined, `${y} suspects n3`);
  const observer = y as string;
  c.sim.network.heal();
  // The observer hears only from n3 from now on.
  c.sim.network.setLink('*', observer, { lossProbability: 1 });
  c.sim.network.setLink('n3', observer, { lossProbability: 0 });
  c.runFor(10_000);
  t.equal(log.filter((e) => e.type === 'failed' && e.member === 'n3').length, 0, 'nobody declared n3 failed');
  t.equal(c.view(observer, 'n3'), 'alive', 'the observer sees n3 alive');
  t.equal(c.node(observer).stats.lastChancePings, 1, `the observer pinged n3 once before declaring (${c.node(observer).stats.lastChancePings}; n3 incarnation ${c.node('n3').incarnation})`);
  t.ok(c.node('n3').incarnation > 0, 'n3 refuted');
});

t.test('a member corrects whoever passes on an accusation it already refuted', async (t) => {
  const config = membershipConfig('lan', { gossipEagerDelayMs: 0, gossipIntervalMs: 20_000 });
  const { c } = cluster(20, 20, { config });
  for (let s = 0; s < 120 && !c.converged(); s++) c.runFor(1000);
  const observer = isolateUntilSuspected(c, 'n3') as string;
  // n3's refutation (direct and gossiped) never reaches the observer, whose own packets do go out.
  c.sim.network.setLink('*', observer, { lossProbability: 1 });
  c.sim.network.heal();
  const before = c.node('n3').incarnation;
  for (let step = 0; step < 30_000 && c.node('n3').incarnation === before; step++) c.runFor(1);
  t.ok(c.node('n3').incarnation > before, 'n3 refuted');
  t.equal(c.view(observer, 'n3'), 'suspect', 'the observer missed the refutation');
  // The observer's next word about n3 (its gossip or its last ping) reaches n3, which answers.
  c.sim.network.setLink('n3', observer, { lossProbability: 0 });
  const corrections = c.node('n3').stats.staleCorrections;
  c.runFor(30_000);
  t.ok(c.node('n3').stats.staleCorrections > corrections, `n3 corrected a stale accusation (${c.node('n3').stats.staleCorrections - corrections} times)`);
  t.equal(c.view(observer, 'n3'), 'alive', 'the observer sees n3 alive');
});

t.test('a graceful leave is seen as left, not failed', async (t) => {
  const { c, log } = cluster(5, 10);
  c.runFor(5000);
  let done = false;
  c.node('n4').leave(() => (done = true));
  c.runFor(3000);
  t.ok(done, 'leave completed');
  t.equal(c.node('n4').state, 'left');
  c.crash('n4');
  c.runFor(30_000);
  t.ok(everyoneSees(c, 'n4', 'left'), 'everyone sees n4 left');
  t.equal(log.filter((e) => e.type === 'left' && e.member === 'n4').length, 9);
  t.equal(log.filter((e) => e.type === 'failed' || e.type === 'suspect').length, 0, 'no failure, no suspicion');
});

t.test('a partition into two halves: each side fails the other; healed, all alive everywhere', async (t) => {
  const config = membershipConfig('lan', { reconnectIntervalMs: 10_000 });
  const { c, log } = cluster(6, 20, { config });
  c.runFor(5000);
  const a = c.names().slice(0, 10);
  const b = c.names().slice(10);
  c.sim.network.partition([a, b]);
  c.runFor(90_000);
  t.ok(
    a.every((x) => b.every((y) => c.view(x, y) === 'dead')),
    'side A sees side B dead',
  );
  t.ok(
    b.every((x) => a.every((y) => c.view(x, y) === 'dead')),
    'side B sees side A dead',
  );
  t.ok(
    a.every((x) => a.every((y) => c.view(x, y) === 'alive')),
    'side A still sees itself alive',
  );
  const healedAt = c.sim.nowMs();
  c.sim.network.heal();
  let convergedAt = -1;
  for (let s = 0; s < 120 && convergedAt < 0; s++) {
    c.runFor(1000);
    if (c.converged()) convergedAt = c.sim.nowMs();
  }
  t.ok(convergedAt > 0, `all alive everywhere ${convergedAt - healedAt} ms after healing`);
  const alive = log.filter((e) => e.type === 'alive' && e.at >= healedAt);
  t.ok(alive.length >= 200, `${alive.length} members came back alive in someone's view`);
});

t.test('metadata changes reach everyone', async (t) => {
  const meta = (ip: string): Uint8Array => encodeMeta({ role: 'agent', underlayIp: ip, version: '0.1.0' });
  const { c, log } = cluster(7, 25, { meta: (i) => meta(`198.18.0.${i + 1}`) });
  c.runFor(5000);
  c.node('n9').updateMeta(meta('198.18.9.99'));
  c.runFor(2000);
  for (const o of c.names()) t.equal(decodeMeta(c.node(o).member('n9')?.meta as Uint8Array).underlayIp, '198.18.9.99', `${o} sees the new IP`);
  t.equal(log.filter((e) => e.type === 'update' && e.member === 'n9').length, 24, 'one update event per other node');
});

t.test('10% loss on every link for a long run: no healthy node is ever declared failed', async (t) => {
  const { c, log } = cluster(8, 50, { loss: 0.1 });
  c.runFor(30 * 60_000);
  const nodeHours = (50 * 30) / 60;
  t.equal(log.filter((e) => e.type === 'failed').length, 0, `no false failure in ${nodeHours} node-hours`);
  t.ok(c.converged());
  const probes = c.names().reduce((s, n) => s + c.node(n).stats.probes, 0);
  const reliable = c.names().reduce((s, n) => s + c.node(n).stats.reliableProbes, 0);
  t.ok(probes > 50 * 1700, `${probes} probes ran`);
  t.ok(reliable > 0, `${reliable} probes needed the stream fallback`);
  t.comment(`suspicions of healthy nodes: ${log.filter((e) => e.type === 'suspect').length}`);
});

t.test('same seed, same run; another seed, another run', async (t) => {
  const run = (seed: number): { digest: string; events: string } => {
    const { c, log } = cluster(seed, 20, { loss: 0.05 });
    c.runFor(5000);
    c.crash('n3');
    c.runFor(30_000);
    return { digest: c.sim.traceDigest(), events: JSON.stringify(log) };
  };
  const a = run(11);
  const b = run(11);
  const other = run(12);
  t.equal(a.digest, b.digest);
  t.equal(a.events, b.events);
  t.not(a.digest, other.digest);
});

t.test('two nodes claiming one name: the live one is kept, the conflict counted', async (t) => {
  const { c, log } = cluster(9, 5);
  c.runFor(3000);
  t.ok(c.converged());
  c.addNode('impostor', { name: 'n2', seeds: ['n0'] });
  c.runFor(10_000);
  for (const o of ['n0', 'n1', 'n3', 'n4']) {
    t.equal(c.node(o).member('n2')?.address, 'n2', `${o} keeps the original address`);
    t.equal(c.node(o).member('n2')?.state, 'alive');
  }
  const conflicts = ['n0', 'n1', 'n3', 'n4', 'n2'].reduce((s, n) => s + c.node(n).stats.identityConflicts, 0);
  t.ok(conflicts > 0, `${conflicts} conflicts counted`);
  t.ok(
    log.some((e) => e.type === 'conflict' && e.member === 'n2'),
    'conflict events emitted',
  );
  t.equal(log.filter((e) => e.type === 'failed').length, 0, 'the original is not harmed');
});

t.test('a restarted node rejoins with a higher incarnation than any remembered', async (t) => {
  const { c, log } = cluster(10, 10);
  c.runFor(5000);
  c.node('n5').updateMeta(new Uint8Array([1]));
  c.node('n5').updateMeta(new Uint8Array([2]));
  c.runFor(2000);
  const remembered = c.node('n0').member('n5')?.incarnation as number;
  t.equal(remembered, 2);
  c.crash('n5');
  c.runFor(30_000);
  t.ok(everyoneSees(c, 'n5', 'dead'));
  c.restart('n5');
  t.equal(c.node('n5').incarnation, 0, 'a fresh process starts at 0');
  c.runFor(5000);
  t.ok(c.converged(), 'n5 is alive everywhere again');
  t.ok((c.node('n0').member('n5')?.incarnation as number) > remembered, 'with an incarnation above the remembered one');
  t.ok(log.filter((e) => e.type === 'alive' && e.member === 'n5').length >= 9);
});

t.test('dead and left members are reaped after the tombstone timeout', async (t) => {
  const config = membershipConfig('local', { tombstoneTimeoutMs: 20_000 });
  const { c, log } = cluster(13, 6, { config });
  c.runFor(3000);
  c.crash('n2');
  c.node('n3').leave();
  c.runFor(3000);
  c.crash('n3');
  c.runFor(15_000);
  t.equal(c.view('n0', 'n2'), 'dead');
  t.equal(c.view('n0', 'n3'), 'left');
  c.runFor(60_000);
  t.equal(c.view('n0', 'n2'), 'absent', 'dead member reaped');
  t.equal(c.view('n0', 'n3'), 'absent', 'left member reaped');
  t.equal(log.filter((e) => e.type === 'reaped').length, 8, 'four observers reaped two members each');
  c.runFor(30_000);
  t.equal(c.view('n1', 'n2'), 'absent', 'no stale message brought them back');
});

t.test('garbage packets are dropped and counted; the node keeps working', async (t) => {
  const { c } = cluster(14, 4);
  c.runFor(3000);
  c.sim.network.addHost('attacker', (host) => {
    const { packets } = createSimTransports(host);
    let n = 0;
    const send = (): void => {
      if (n++ >= 200) return;
      const junk = new Uint8Array(1 + host.rng.int(300));
      for (let i = 0; i < junk.length; i++) junk[i] = host.rng.int(256);
      if (n % 4 === 0) junk[0] = 0x92; // looks like a packet header
      packets.send('n1', junk);
      host.clock.setTimer(10, send);
    };
    send();
  });
  c.runFor(10_000);
  const stats = c.node('n1').stats;
  t.ok(stats.packetsDropped >= 150, `${stats.packetsDropped} bad packets dropped`);
  t.ok(c.converged(), 'membership unaffected');
});

t.test('a join that reaches no seed retries with backoff until one answers', async (t) => {
  const c = new SwimCluster({ seed: 15, config: membershipConfig('lan') });
  c.addNode('a', { seeds: ['b'] });
  c.runFor(10_000);
  t.notOk(c.node('a').isJoined);
  const attempts = c.node('a').stats.joinAttempts;
  t.ok(attempts >= 3 && attempts <= 5, `${attempts} attempts in 10 s (1, 2, 4 s backoff with jitter)`);
  c.addNode('b');
  c.runFor(20_000);
  t.ok(c.node('a').isJoined, 'joined once the seed came up');
  t.ok(c.converged());
});

t.test('probeNow: a hint of a lost connection gets a dead member suspected within a round trip', async (t) => {
  const { c, log } = cluster(16, 10);
  c.runFor(5000);
  const crashedAt = c.sim.nowMs();
  c.crash('n4');
  c.node('n0').probeNow('n4');
  c.node('n0').probeNow('nobody');
  c.node('n0').probeNow('n0');
  c.runFor(50);
  const first = log.find((e) => e.type === 'suspect' && e.member === 'n4');
  t.ok(first !== undefined && first.at - crashedAt < 50, `suspected ${first === undefined ? 'never' : `${first.at - crashedAt} ms`} after the crash`);
  c.runFor(10_000);
  t.ok(everyoneSees(c, 'n4', 'dead'));
});

t.test('probeNow: a stream ping reset with the dying connection is opened again and finds the dead port', async (t) => {
  // n0's next stream open to n4 fails with a reset, as libp2p's does when it goes out on the
  // connection the hint is about while it is torn down; later opens reach the simulated network.
  let resetNext = false;
  let sim: SwimCluster['sim'] | undefined;
  const wrapStreams = (i: number) =>
    i !== 0
      ? undefined
      : (streams: StreamTransport): StreamTransport => ({
          get localAddress() {
            return streams.localAddress;
          },
          handle: (protocol, handler) => streams.handle(protocol, handler),
          unhandle: (protocol) => streams.unhandle(protocol),
          close: () => streams.close(),
          open: (to, protocol, callback, options) => {
            if (resetNext && to === 'n4') {
              resetNext = false;
              const timer = sim?.network.host('n0').clock.setTimer(1, () => callback(new TransportError(TransportErrorCode.ConnectionReset, 'stream to n4 failed: the connection closed')));
              return () => timer?.cancel();
            }
            return streams.open(to, protocol, callback, options);
          },
        });
  const { c, log } = cluster(17, 10, { wrapStreams });
  sim = c.sim;
  c.runFor(5000);
  const crashedAt = c.sim.nowMs();
  c.crash('n4');
  resetNext = true;
  const retriesBefore = c.node('n0').stats.reliableProbeRetries;
  c.node('n0').probeNow('n4');
  c.runFor(100);
  t.notOk(resetNext, 'the first stream ping was reset');
  t.equal(c.node('n0').stats.reliableProbeRetries - retriesBefore, 1, 'and opened once more');
  const first = log.find((e) => e.type === 'suspect' && e.member === 'n4');
  t.ok(first !== undefined && first.at - crashedAt < 100, `suspected ${first === undefined ? 'never' : `${first.at - crashedAt} ms`} after the crash, not at the end of the probe interval`);
  c.runFor(10_000);
  t.ok(everyoneSees(c, 'n4', 'dead'));
});

t.test('periodic syncs go to a connected peer when the runtime names some, else to random members', async (t) => {
  // Only n0 syncs periodically; each sync opens one stream at n0 and one at its partner, so the
  // partners' stream counts show where n0's syncs went.
  const syncing = membershipConfig('lan', { pushPullIntervalMs: 10_000 });
  const quiet = membershipConfig('lan', { pushPullIntervalMs: 0 });
  const partners = (connected: string[]): Map<string, number> => {
    const c = new SwimCluster({ seed: 31, config: syncing, link: { latency: { kind: 'uniform', minMs: 0.2, maxMs: 2 }, lossProbability: 0 } });
    c.addNode('n0', { connectedPeers: () => connected });
    c.setConfig(quiet);
    for (let i = 1; i < 8; i++) c.addNode(`n${i}`, { seeds: ['n0'] });
    c.runFor(20_000);
    t.ok(c.converged(), 'converged');
    const before = new Map(c.names().map((n) => [n, c.sim.network.host(n).counters.streamsOpened]));
    const syncsBefore = c.node('n0').stats.syncsCompleted;
    c.runFor(300_000);
    t.ok(c.node('n0').stats.syncsCompleted - syncsBefore >= 20, `n0 synced every 10 s (${c.node('n0').stats.syncsCompleted - syncsBefore} syncs)`);
    return new Map(
      c
        .names()
        .filter((n) => n !== 'n0')
        .map((n) => [n, c.sim.network.host(n).counters.streamsOpened - (before.get(n) ?? 0)]),
    );
  };
  const withPeer = partners(['n3']);
  t.ok((withPeer.get('n3') ?? 0) >= 20, `the connected peer served every sync (${withPeer.get('n3')})`);
  t.same(
    [...withPeer].filter(([n, opened]) => n !== 'n3' && opened > 0),
    [],
    'no other member was dialled',
  );
  const without = partners([]);
  t.ok([...without.values()].filter((opened) => opened > 0).length >= 4, `random members without connected peers (${JSON.stringify([...without])})`);
});

t.test('syncs that teach new members are repeated soon (catch-up), and only then', async (t) => {
  // Gossip slowed down so that joins spread mostly by syncs: the catch-up chain is what differs.
  const base = membershipConfig('lan', { gossipIntervalMs: 5000, retransmitMult: 1 });
  const timeToConverge = (catchUpMs: number): { ms: number; catchUps: number } => {
    const { c } = cluster(7, 40, { config: { ...base, pushPullCatchUpIntervalMs: catchUpMs } });
    let at = -1;
    for (let s = 0; s < 120 && at < 0; s++) {
      c.runFor(500);
      if (c.converged()) at = c.sim.nowMs();
    }
    const catchUpsNow = (): number => c.names().reduce((n, name) => n + c.node(name).stats.catchUpSyncs, 0);
    const catchUps = catchUpsNow();
    // Converged: each chain ends at its first sync that teaches nothing, and none starts again.
    c.runFor(20_000);
    const settled = catchUpsNow();
    c.runFor(60_000);
    t.equal(catchUpsNow(), settled, `no catch-up sync in the minute after the chains ended (catch-up ${catchUpMs} ms)`);
    return { ms: at, catchUps };
  };
  const off = timeToConverge(0);
  const on = timeToConverge(1000);
  t.comment(`converged after ${on.ms} ms with catch-up (${on.catchUps} syncs brought forward), ${off.ms} ms without`);
  t.equal(off.catchUps, 0, 'none brought forward when disabled');
  t.ok(on.catchUps > 0, 'syncs brought forward while joins were news');
  t.ok(on.ms > 0, 'converged with catch-up');
  t.ok(off.ms < 0 || on.ms < off.ms, 'sooner than without');
});
