/**
 * Three allocator masters on the simulated network: a follower forwards an agent's allocation
 * to the leader (op 7) with the agent's identity, the leader takes op 7 only from a master, and
 * a forward the leader does not answer turns into a redirect the agent follows.
 */
import t from 'tap';
import { type AllocatorMaster, IPAM_PROTOCOL, IpamErrorCode, LeaseClient, decodeResult, type Lease, type MasterInfo } from '../../../src/ipam/index.js';
import { createSimTransports, RpcClient, type SimTransports } from '../../../src/net/index.js';
import { Simulation } from '../../../src/sim/index.js';
import { SIM_MASTERS, startSimMaster } from '../../helpers/sim-masters.js';
import { Packr } from 'msgpackr';

const MASTERS = SIM_MASTERS;

function world(seed: number) {
  const sim = new Simulation({ seed, network: { defaultLink: { latency: { kind: 'constant', ms: 2 } } } });
  const hosts = new Map<string, SimTransports>();
  for (const name of [...MASTERS, 'a', 'x']) sim.network.addHost(name, (host) => void hosts.set(name, createSimTransports(host)));
  const masters = new Map<string, AllocatorMaster>();
  for (const name of MASTERS) masters.set(name, startSimMaster(sim, hosts, name));
  for (let i = 0; i < 100 && ![...masters.values()].some((m) => m.raft.role === 'leader'); i++) sim.runFor(100);
  const leader = [...masters.values()].find((m) => m.raft.role === 'leader') as AllocatorMaster;
  // Let the followers hear of the leader (and the configuration commit).
  sim.runFor(2000);
  const followers = [...masters.values()].filter((m) => m !== leader);
  const infos = (): MasterInfo[] => MASTERS.map((n) => ({ name: n, address: n, leader: masters.get(n) === leader, term: leader.raft.term }));
  const agent = (connectedTo: readonly string[], onLease: (lease: Lease) => void): LeaseClient =>
    new LeaseClient({
      agent: 'a',
      streams: (hosts.get('a') as SimTransports).streams,
      clock: sim.scheduler.clock(),
      rng: sim.rng.fork('agent'),
      masters: infos,
      connected: (m) => connectedTo.includes(m.name),
      store: { load: () => undefined, save: () => {} },
      onLease,
    });
  return { sim, hosts, masters, leader, followers, agent };
}

const nameOf = (w: ReturnType<typeof world>, m: AllocatorMaster): string => [...w.masters].find(([, v]) => v === m)?.[0] as string;

t.test('an agent connected only to a follower gets its lease through it, pinned to its own identity', async (t) => {
  const w = world(11);
  const follower = w.followers[0] as AllocatorMaster;
  const leases: Lease[] = [];
  const client = w.agent([nameOf(w, follower)], (lease) => leases.push(lease));
  client.start();
  w.sim.runFor(500);
  t.equal(leases.length, 1, 'leased');
  t.equal(client.stats.redirects, 0, 'no redirect: the follower forwarded');
  t.equal(follower.stats.leaseForwarded, 1);
  t.equal(w.leader.state.lease('a')?.peerId, 'a', "the leader pinned the agent's identity, not the follower's");
  t.equal(follower.state.lease('a')?.vtepIp, leases[0]?.vtepIp, 'the follower applied the same allocation');
  client.stop();
});

t.test('connected to the leader, the agent asks it directly', async (t) => {
  const w = world(12);
  const leases: Lease[] = [];
  const client = w.agent([nameOf(w, w.leader), ...w.followers.map((f) => nameOf(w, f))], (lease) => leases.push(lease));
  client.start();
  w.sim.runFor(500);
  t.equal(leases.length, 1);
  t.same(
    w.followers.map((f) => f.stats.leaseForwarded),
    [0, 0],
    'nothing forwarded',
  );
});

t.test('the leader refuses a forwarded allocation that does not come from the master it names', async (t) => {
  const w = world(13);
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const rpc = new RpcClient((w.hosts.get('x') as SimTransports).streams, w.sim.scheduler.clock(), IPAM_PROTOCOL, 2000);
  let answer: unknown;
  rpc.request(nameOf(w, w.leader), packr.pack([7, 'victim', 'x', nameOf(w, w.followers[0] as AllocatorMaster)]).slice(), (error, response) => {
    answer = error ?? decodeResult(response as Uint8Array);
  });
  w.sim.runFor(500);
  t.match(answer, { ok: false, error: { code: IpamErrorCode.ForwardRefused } });
  t.equal(w.leader.stats.leaseForwardRefused, 1);
  t.equal(w.leader.state.lease('victim'), undefined, 'nothing allocated');
  let malformed: unknown;
  rpc.request(nameOf(w, w.leader), packr.pack([7, 'victim', 42, 'm1']).slice(), (error) => {
    malformed = error;
  });
  w.sim.runFor(500);
  t.match(malformed, { message: /forwarded allocation is \[7, agent/ }, 'a malformed forward is answered with what would be valid');
  rpc.close();
});

t.test('a forward the leader does not answer becomes a redirect, which the agent follows', async (t) => {
  const w = world(14);
  const follower = w.followers[0] as AllocatorMaster;
  // The follower's messages to the leader are lost; the leader still reaches it (it stays a follower).
  w.sim.network.partitionOneWay([nameOf(w, follower)], [nameOf(w, w.leader)]);
  const leases: Lease[] = [];
  const client = w.agent([nameOf(w, follower)], (lease) => leases.push(lease));
  client.start();
  w.sim.runFor(5000);
  t.equal(follower.stats.leaseForwardFailed, 1, 'the forward got no answer');
  t.equal(client.stats.redirects, 1, 'the agent was sent to the leader');
  t.equal(leases.length, 1, 'and leased from it');
  t.equal(w.leader.state.lease('a')?.peerId, 'a');
  client.stop();
});
