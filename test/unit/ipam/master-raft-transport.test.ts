/**
 * How masters carry Raft between them: an answer rides in the response to the message it
 * answers (when the asker says it takes it there), and a master missing from membership is
 * reached through the peer its own Raft messages come from.
 */
import t from 'tap';
import { Packr, Unpackr } from 'msgpackr';
import { type AllocatorMaster, RAFT_PROTOCOL } from '../../../src/ipam/index.js';
import { createSimTransports, RpcClient, type SimTransports } from '../../../src/net/index.js';
import { decodeRaftMessage, encodeRaftMessage } from '../../../src/raft/index.js';
import { Simulation } from '../../../src/sim/index.js';
import { SIM_MASTERS, startSimMaster } from '../../helpers/sim-masters.js';

const MASTERS = SIM_MASTERS;
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

/**
 * Three masters on the simulated network; `knows(self, other)` says whether `self`'s
 * membership has an address for `other`. `late` starts 3 s after the others.
 */
function world(seed: number, knows: (self: string, other: string) => boolean = () => true, late?: string) {
  const sim = new Simulation({ seed, network: { defaultLink: { latency: { kind: 'constant', ms: 2 } } } });
  const hosts = new Map<string, SimTransports>();
  for (const name of MASTERS) sim.network.addHost(name, (host) => void hosts.set(name, createSimTransports(host)));
  const masters = new Map<string, AllocatorMaster>();
  const start = (name: string): void => void masters.set(name, startSimMaster(sim, hosts, name, { knows: (other) => knows(name, other) }));
  for (const name of MASTERS) if (name !== late) start(name);
  if (late !== undefined) {
    sim.runFor(3000);
    start(late);
  }
  return { sim, hosts, masters };
}

const leaderOf = (masters: Map<string, AllocatorMaster>): AllocatorMaster | undefined => [...masters.values()].find((m) => m.raft.role === 'leader');

t.test('the answer goes into the response only when the asker says it takes it there', async (t) => {
  const w = world(22);
  w.sim.runFor(5000);
  const leader = leaderOf(w.masters) as AllocatorMaster;
  const [followerName] = [...w.masters.entries()].find(([, m]) => m !== leader) as [string, AllocatorMaster];
  // Another follower asks for a pre-vote: refused (a leader is alive), with an answer either way.
  const asker = MASTERS.find((n) => n !== followerName && w.masters.get(n) !== leader) as string;
  const client = new RpcClient((w.hosts.get(asker) as SimTransports).streams, w.sim.scheduler.clock(), RAFT_PROTOCOL, 2000);
  const prevote = encodeRaftMessage({ type: 'prevote', term: leader.raft.term + 1, lastIndex: 0, lastTerm: 0 });
  const responses: Uint8Array[] = [];
  client.request(followerName, packr.pack([asker, prevote]).slice(), (error, response) => {
    if (error === null) responses.push(response as Uint8Array);
  });
  client.request(followerName, packr.pack([asker, prevote, 1]).slice(), (error, response) => {
    if (error === null) responses.push(response as Uint8Array);
  });
  w.sim.runFor(200);
  t.equal(responses.length, 2);
  t.equal(responses[0]?.length, 0, 'without the flag (an older master): an empty response, as before');
  const inline = unpackr.unpack(responses[1] as Uint8Array) as [string, Uint8Array];
  t.equal(inline[0], followerName, 'with it: the answer, named by its sender');
  t.match(decodeRaftMessage(inline[1]), { type: 'prevote-reply', granted: false }, 'the pre-vote refused: a leader is alive');
  client.close();
});

t.test("a master missing from the leader's membership still follows it: the leader reaches it through the peer its messages come from", async (t) => {
  // m1 and m2 elect; m3 starts late, and m1's and m2's membership never learns its address.
  const w = world(23, (self, other) => other !== 'm3' || self === 'm3', 'm3');
  w.sim.runFor(6000);
  const leader = leaderOf(w.masters) as AllocatorMaster;
  t.not(leader, w.masters.get('m3'), 'm1 or m2 leads');
  const m3 = w.masters.get('m3') as AllocatorMaster;
  t.equal(m3.raft.leaderId, leader.raft.leaderId, 'm3 follows the leader');
  t.equal(m3.raft.lastApplied, leader.raft.lastApplied, 'and applied its log');
});
