import t from 'tap';
import { encodeResult, IPAM_PROTOCOL, isLeaseNews, LeaseClient, type Lease, type MasterInfo } from '../../../src/ipam/index.js';
import { createSimTransports, RpcServer, type SimTransports } from '../../../src/net/index.js';
import { RaftErrorCode } from '../../../src/raft/index.js';
import { Simulation } from '../../../src/sim/index.js';
import { createLogger } from '../../../src/log/index.js';

const LEASE: Lease = { agent: 'a', vtepIp: '44.128.0.1', vtepMac: '70:B3:D5:00:00:01', networks: { dcos: { subnet: '9.0.1.0/24' } } };

/** An agent `a` and masters m1 (leader) and m2 (follower, redirects to m1), each counting the requests it was asked. */
function world() {
  const sim = new Simulation({ seed: 7, network: { defaultLink: { latency: { kind: 'constant', ms: 5 } } } });
  const hosts = new Map<string, SimTransports>();
  for (const name of ['a', 'm1', 'm2', 'm3']) sim.network.addHost(name, (host) => void hosts.set(name, createSimTransports(host)));
  const asked = { m1: 0, m2: 0, m3: 0 };
  new RpcServer((hosts.get('m1') as SimTransports).streams, IPAM_PROTOCOL, (_request, _from, respond) => {
    asked.m1++;
    respond(encodeResult({ ok: true, value: LEASE }));
  });
  new RpcServer((hosts.get('m2') as SimTransports).streams, IPAM_PROTOCOL, (_request, _from, respond) => {
    asked.m2++;
    respond(encodeResult({ ok: false, error: { code: RaftErrorCode.NotLeader, message: 'raft member m2 is not the leader; the leader is m1', details: { leader: 'm1' } } }));
  });
  // m3: a follower that has heard from no leader yet (a master whose own join came late).
  new RpcServer((hosts.get('m3') as SimTransports).streams, IPAM_PROTOCOL, (_request, _from, respond) => {
    asked.m3++;
    respond(encodeResult({ ok: false, error: { code: RaftErrorCode.NotLeader, message: 'raft member m3 is not the leader and knows no leader yet', details: {} } }));
  });
  const streams = (hosts.get('a') as SimTransports).streams;
  /** The agent's client; the first retry after 10 s, so that only kicks can lease sooner. */
  const client = (masters: () => MasterInfo[], onLease: (lease: Lease) => void, connected?: (master: MasterInfo) => boolean): LeaseClient =>
    new LeaseClient({
      agent: 'a',
      streams,
      clock: sim.scheduler.clock(),
      rng: sim.rng,
      masters,
      store: { load: () => undefined, save: () => {} },
      retryMinMs: 10_000,
      retryMaxMs: 20_000,
      onLease,
      ...(connected === undefined ? {} : { connected }),
    });
  return { sim, asked, client };
}

t.test('masters learnt in one batch: the kicks make one request, to the leader the batch named, with no redirect', async (t) => {
  const w = world();
  const { sim, asked } = w;
  let known: MasterInfo[] = [];
  const leases: Lease[] = [];
  const client = w.client(
    () => known,
    (lease) => leases.push(lease),
  );
  client.start();
  sim.runFor(50);
  t.match(client.lastError?.message, /no master is known/, 'no master at start: waiting out the backoff');
  // A join's sync reports its members one at a time, each report kicking the client: the
  // follower first, then the leader.
  known = [{ name: 'm2', address: 'm2', leader: false, term: 3 }];
  client.kick();
  known = [...known, { name: 'm1', address: 'm1', leader: true, term: 3 }];
  client.kick();
  sim.runFor(100);
  t.same(leases, [LEASE], 'leased long before the 10 s retry');
  t.same(asked, { m1: 1, m2: 0, m3: 0 }, 'one request, to the leader; the follower reported first was not asked');
  t.equal(client.stats.redirects, 0);
  t.equal(client.stats.requests, 1);
  client.stop();
});

t.test('a redirect to a master not known yet waits; the kick that brings the leader leases', async (t) => {
  const w = world();
  const { sim, asked } = w;
  let known: MasterInfo[] = [{ name: 'm2', address: 'm2', leader: false, term: 3 }];
  let leased = 0;
  const client = w.client(
    () => known,
    () => leased++,
  );
  client.start();
  sim.runFor(100);
  t.equal(asked.m2, 1, 'the only master known was asked');
  t.equal(leased, 0, 'its redirect names m1, which membership has not reported');
  t.match(client.lastError?.code, RaftErrorCode.NotLeader);
  client.kick();
  sim.runFor(100);
  t.equal(asked.m2, 2, 'a kick asks again at once');
  known = [...known, { name: 'm1', address: 'm1', leader: true, term: 3 }];
  client.kick();
  sim.runFor(100);
  t.equal(leased, 1, 'the kick after the first one ran still requests: leased from m1');
  t.same(asked, { m1: 1, m2: 2, m3: 0 });
  client.stop();
});

t.test('a connected follower that knows no leader: the agent asks the leader membership names, at once', async (t) => {
  const w = world();
  const { sim, asked } = w;
  // m3 is the master the agent joined through (connected); m1 publishes that it leads, but m3
  // has not heard from it yet: the cold start traced in the e2e benchmark.
  const m3: MasterInfo = { name: 'm3', address: 'm3', leader: false, term: 0 };
  const m1: MasterInfo = { name: 'm1', address: 'm1', leader: true, term: 1 };
  let known = [m3];
  let leased = 0;
  const client = w.client(
    () => known,
    () => leased++,
    (master) => master.name === 'm3',
  );
  client.start();
  sim.runFor(100);
  t.equal(leased, 0, 'no leader published: m3 cannot help and names nobody');
  t.equal(asked.m3, 1);
  t.match(client.lastError?.message, /knows no leader/, 'waiting out the backoff');
  known = [m3, m1];
  client.kick();
  sim.runFor(100);
  t.equal(leased, 1, 'leased long before the 10 s retry');
  t.same(asked, { m1: 1, m2: 0, m3: 2 }, 'the connected follower first (it may forward), then the published leader directly');
  t.equal(client.stats.redirects, 1, 'counted as a redirect');
  client.stop();
});

t.test('no master known at start is said at info (the join is not answered yet); still none 30 s on, it is a warning', async (t) => {
  const w = world();
  const lines: { level: number; msg: string }[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) } });
  const client = new LeaseClient({
    agent: 'a',
    streams: createSimTransports(w.sim.network.addHost('b', () => undefined)).streams,
    clock: w.sim.scheduler.clock(),
    rng: w.sim.rng,
    masters: () => [],
    store: { load: () => undefined, save: () => {} },
    retryMinMs: 1000,
    retryMaxMs: 5000,
    logger,
  });
  client.start();
  w.sim.runFor(50);
  const waits = (): { level: number; msg: string }[] => lines.filter((l) => l.msg.startsWith('no lease yet'));
  t.same(
    waits().map((l) => l.level),
    [30],
    'one line at start, at info',
  );
  t.match(waits()[0]?.msg, /no master is known yet/);
  w.sim.runFor(40_000);
  t.same(
    waits().map((l) => l.level),
    [30, 40],
    'the same wait reported 30 s later is a warning',
  );
  client.stop();
});

t.test('membership news a waiting client acts on: a master joining or returning, or now leading', async (t) => {
  const follower = { role: 'master', raft: { role: 'follower' } };
  const leader = { role: 'master', raft: { role: 'leader' } };
  t.ok(isLeaseNews('join', follower));
  t.ok(isLeaseNews('alive', follower));
  t.ok(isLeaseNews('update', leader), 'a master now says it leads');
  t.notOk(isLeaseNews('update', follower), 'other metadata changes are not news');
  t.notOk(isLeaseNews('suspect', leader));
  t.notOk(isLeaseNews('join', { role: 'agent' }), 'agents are not');
  t.notOk(isLeaseNews('update', undefined), 'no readable metadata');
});
