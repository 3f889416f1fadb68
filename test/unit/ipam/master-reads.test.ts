/**
 * Agents' allocation reads (op 5, the whole list; op 6, one agent's) are answered from a master's
 * state machine without a read barrier. A master that has just restarted holds none of the
 * allocations in its log until the leader tells it what is committed: it must refuse, not answer
 * an empty list (agents replace their copy with it, and dropped every other agent's routes when
 * one did in a rolling restart of the masters).
 */
import t from 'tap';
import { type AllocatorMaster, IPAM_PROTOCOL, IpamErrorCode, decodeResult, encodeLeaseRequest, type IpamResult } from '../../../src/ipam/index.js';
import { createSimTransports, RpcClient, type SimTransports } from '../../../src/net/index.js';
import { Simulation } from '../../../src/sim/index.js';
import { MemoryRaftStorage } from '../../../src/testing/index.js';
import { SIM_MASTERS, startSimMaster } from '../../helpers/sim-masters.js';

const MASTERS = SIM_MASTERS;

t.test('a restarted master refuses allocation reads until it has caught up, then answers them whole', async (t) => {
  const sim = new Simulation({ seed: 21, network: { defaultLink: { latency: { kind: 'constant', ms: 2 } } } });
  const hosts = new Map<string, SimTransports>();
  for (const name of [...MASTERS, 'x']) sim.network.addHost(name, (host) => void hosts.set(name, createSimTransports(host)));
  const storages = new Map(MASTERS.map((n) => [n, new MemoryRaftStorage()]));
  const masters = new Map<string, AllocatorMaster>();
  const boot = (name: string): AllocatorMaster => {
    const master = startSimMaster(sim, hosts, name, { storage: storages.get(name) as MemoryRaftStorage, rngName: `${name}-${sim.nowMs()}` });
    masters.set(name, master);
    return master;
  };
  for (const name of MASTERS) boot(name);
  sim.runFor(3000);
  const leader = MASTERS.find((n) => masters.get(n)?.raft.role === 'leader') as string;
  t.ok(leader !== undefined, 'a leader');
  const rpc = new RpcClient((hosts.get('x') as SimTransports).streams, sim.scheduler.clock(), IPAM_PROTOCOL, 1000);
  const ask = (to: string, op: 'allocate' | 'allocations' | 'peek', agent: string): IpamResult | undefined => {
    let result: IpamResult | undefined;
    rpc.request(to, encodeLeaseRequest(op, agent), (error, response) => {
      if (error === null) result = decodeResult(response as Uint8Array);
    });
    for (let i = 0; i < 200 && result === undefined; i++) sim.runFor(5);
    return result;
  };
  for (const agent of ['a1', 'a2', 'a3']) t.equal(ask(leader, 'allocate', agent)?.ok, true, `${agent} allocated`);
  sim.runFor(500);
  const follower = MASTERS.find((n) => n !== leader) as string;
  t.equal((ask(follower, 'allocations', 'x') as { value: unknown[] }).value.length, 3, 'a follower in step answers the whole list');
  t.equal(masters.get(follower)?.raft.caughtUp, true);

  // The follower restarts (same log on disk, nothing applied yet) where the other masters cannot
  // reach it yet, so that it stays behind while the agent's host asks it.
  masters.get(follower)?.stop();
  sim.network.crash(follower);
  sim.network.partition([[follower, 'x'], MASTERS.filter((n) => n !== follower)]);
  sim.network.restart(follower);
  const restarted = boot(follower);
  sim.runFor(1000);
  t.equal(restarted.state.leases().length, 0, 'restarted, its state machine is empty');
  t.equal(restarted.raft.caughtUp, false, 'and it says so');
  t.match(ask(follower, 'allocations', 'x'), { ok: false, error: { code: IpamErrorCode.NotCaughtUp } }, 'the list is refused, not answered empty');
  t.match(ask(follower, 'peek', 'a2'), { ok: false, error: { code: IpamErrorCode.NotCaughtUp } }, 'and so is a peek');
  t.equal(restarted.stats.allocationReadsRefused, 2, 'both counted');

  sim.network.heal();
  sim.runFor(2000);
  t.equal(restarted.raft.caughtUp, true, 'caught up once the leader told it what is committed');
  t.equal((ask(follower, 'allocations', 'x') as { value: unknown[] }).value.length, 3, 'then it answers the whole list');
  t.match(ask(follower, 'peek', 'a2'), { ok: true, value: { agent: 'a2' } });
  rpc.close();
  for (const m of masters.values()) m.stop();
});
