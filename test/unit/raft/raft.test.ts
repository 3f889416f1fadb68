import t from 'tap';
import fc from 'fast-check';
import { Scheduler } from '../../../src/sim/index.js';
import { SeededRng } from '../../../src/common/index.js';
import { FileRaftStorage, RaftError, RaftErrorCode, RaftNode, decodeRaftMessage, encodeRaftMessage, type RaftMessage, type StateMachine } from '../../../src/raft/index.js';
import { encodeCommand } from '../../../src/ipam/index.js';
import { IpamCluster, MemoryFs, MemoryRaftStorage, SCENARIO_OVERLAY } from '../../../src/testing/index.js';

function counter(): StateMachine & { value: number } {
  const sm = {
    value: 0,
    apply(command: Uint8Array) {
      sm.value += command[0] as number;
      return Uint8Array.of(sm.value);
    },
    snapshot: () => Uint8Array.of(sm.value),
    restore(data: Uint8Array) {
      sm.value = data[0] as number;
    },
  };
  return sm;
}

t.test('a single voter leads at once and commits what it is given', async (t) => {
  const scheduler = new Scheduler();
  const sm = counter();
  const node = new RaftNode({ id: 'a', voters: ['a'], storage: new MemoryRaftStorage(), stateMachine: sm, clock: scheduler.clock(), rng: new SeededRng(1), send: () => undefined });
  t.throws(() => new RaftNode({ id: 'z', voters: ['a'], storage: new MemoryRaftStorage(), stateMachine: sm, clock: scheduler.clock(), rng: new SeededRng(1), send: () => undefined }), {
    code: RaftErrorCode.InvalidConfig,
  });
  let refused: RaftError | null = null;
  node.propose(Uint8Array.of(1), (err) => (refused = err));
  t.equal((refused as RaftError | null)?.code, RaftErrorCode.NotLeader, 'not started: not leader');
  node.start();
  scheduler.runFor(2000);
  t.equal(node.role, 'leader');
  const results: number[] = [];
  for (const n of [2, 3]) node.propose(Uint8Array.of(n), (err, r) => err === null && results.push(r?.[0] as number));
  let read = false;
  node.read((err) => (read = err === null));
  scheduler.runFor(1);
  t.same(results, [2, 5]);
  t.ok(read);
  // A read whose callback proposes: on a single voter the proposal commits and applies at once,
  // re-entering the read queue; the read must be served once (it used to recurse without end).
  let served = 0;
  let proposed: number | undefined;
  node.read(() => {
    served++;
    node.propose(Uint8Array.of(4), (err, r) => (proposed = err === null ? r?.[0] : -1));
  });
  scheduler.runFor(1);
  t.equal(served, 1);
  t.equal(proposed, 9);
  node.stop();
  let stopped: RaftError | null = null;
  node.propose(Uint8Array.of(1), (err) => (stopped = err));
  t.equal((stopped as RaftError | null)?.code, RaftErrorCode.NotLeader);
});

t.test('three masters: one leader; followers redirect; failover elects another; a returning member does not depose the leader', async (t) => {
  const c = new IpamCluster({ seed: 21, masters: 3, overlay: SCENARIO_OVERLAY, link: { latency: { kind: 'constant', ms: 1 } } });
  c.sim.runFor(3000);
  const leader = c.leader() as string;
  t.ok(leader !== undefined, `leader ${leader}`);
  const follower = c.names.find((n) => n !== leader) as string;
  let redirect: RaftError | null = null;
  c.node(follower).propose(encodeCommand({ op: 'allocate', agent: 'x' }), (err) => (redirect = err));
  t.equal((redirect as RaftError | null)?.details['leader'], leader, 'the follower names the leader');
  let readError: RaftError | null = null;
  c.node(follower).read((err) => (readError = err));
  t.equal((readError as RaftError | null)?.code, RaftErrorCode.NotLeader);
  let allocated = false;
  c.allocate('agent-1', () => (allocated = true));
  c.sim.runFor(500);
  t.ok(allocated);
  let reads = 0;
  c.node(leader).read((err) => err === null && reads++);
  c.sim.runFor(500);
  t.equal(reads, 1, 'a read barrier on the leader completes');
  const term = c.node(leader).term;
  c.crash(leader);
  c.sim.runFor(3000);
  const next = c.leader() as string;
  t.not(next, leader);
  t.ok(c.node(next).term > term, 'a new term');
  let again = false;
  c.allocate('agent-2', () => (again = true));
  c.sim.runFor(500);
  t.ok(again, 'allocation resumes under the new leader');
  c.restart(leader);
  c.sim.runFor(2000);
  t.equal(c.node(leader).role, 'follower', 'the restarted member follows');
  t.same(c.replica(leader).leases(), c.replica(next).leases(), 'and caught up');
  // Isolate a follower long enough for several election timeouts, then heal.
  const lone = c.names.find((n) => n !== next) as string;
  const termBefore = c.node(next).term;
  c.sim.network.partition([[lone], c.names.filter((n) => n !== lone)]);
  c.sim.runFor(10_000);
  t.equal(c.node(lone).term, termBefore, 'pre-vote: the isolated member did not raise its term');
  c.sim.network.heal();
  c.sim.runFor(3000);
  t.equal(c.leader(), next, 'the leader was not deposed');
  t.equal(c.node(next).term, termBefore);
  t.same(c.violations, []);
});

t.test('followers apply a committed entry within a round trip, not at the next heartbeat', async (t) => {
  const c = new IpamCluster({ seed: 5, masters: 3, overlay: SCENARIO_OVERLAY, link: { latency: { kind: 'constant', ms: 1 } } });
  c.sim.runFor(3000);
  const leader = c.leader() as string;
  t.ok(leader !== undefined, `leader ${leader}`);
  for (const agent of ['agent-1', 'agent-2', 'agent-3']) {
    let granted = false;
    c.allocate(agent, () => (granted = true));
    for (let ms = 0; ms < 500 && !granted; ms++) c.sim.runFor(1);
    t.ok(granted, `${agent} granted`);
    const committed = c.node(leader).commitIndex;
    // Two round trips at 1 ms a hop; a heartbeat is 250 ms away at most, so only a commit
    // index sent at once can reach the followers in time (before, they waited for it).
    c.sim.runFor(4);
    for (const name of c.names.filter((n) => n !== leader)) {
      t.ok(c.node(name).lastApplied >= committed, `${name} applied ${c.node(name).lastApplied} of ${committed} 4 ms after ${agent}'s grant`);
    }
    c.sim.runFor(100);
  }
});

t.test('a member far behind catches up through a snapshot', async (t) => {
  const c = new IpamCluster({ seed: 5, masters: 3, overlay: SCENARIO_OVERLAY, raft: { snapshotEveryEntries: 8 } });
  c.sim.runFor(3000);
  const leader = c.leader() as string;
  const lagging = c.names.find((n) => n !== leader) as string;
  c.crash(lagging);
  let done = 0;
  for (let i = 0; i < 40; i++) c.allocate(`agent-${i}`, () => done++);
  c.sim.runFor(5000);
  t.equal(done, 40);
  t.ok(c.node(leader).firstIndex > 8, `the leader compacted its log (first index ${c.node(leader).firstIndex})`);
  c.restart(lagging);
  c.sim.runFor(3000);
  t.equal(c.replica(lagging).agentCount, 40, 'the lagging member holds every allocation');
  t.same(c.replica(lagging).leases(), c.replica(leader).leases());
  t.same(c.violations, []);
});

t.test('file storage: durable round trip, truncation, compaction, torn tail, corruption', async (t) => {
  const fs = new MemoryFs();
  const s = new FileRaftStorage(fs, 'data/raft');
  t.same(s.load(), { term: 0, votedFor: undefined, entries: [], snapshot: undefined });
  s.saveTermAndVote(3, 'b');
  const e = (index: number, term: number): { index: number; term: number; command: Uint8Array } => ({ index, term, command: Uint8Array.of(index) });
  s.replaceFrom(1, [e(1, 1), e(2, 1), e(3, 2)]);
  s.replaceFrom(3, [e(3, 3), e(4, 3)]);
  const reread = new FileRaftStorage(fs, 'data/raft').load();
  t.equal(reread.term, 3);
  t.equal(reread.votedFor, 'b');
  t.same(
    reread.entries.map((x) => [x.index, x.term]),
    [
      [1, 1],
      [2, 1],
      [3, 3],
      [4, 3],
    ],
  );
  s.saveSnapshot({ lastIndex: 2, lastTerm: 1, data: Uint8Array.of(9) });
  s.replaceFrom(5, [e(5, 3)]);
  const after = new FileRaftStorage(fs, 'data/raft').load();
  t.same(after.snapshot, { lastIndex: 2, lastTerm: 1, data: Uint8Array.of(9) });
  t.same(
    after.entries.map((x) => x.index),
    [3, 4, 5],
  );
  fs.append('data/raft/raft-log', Uint8Array.of(50, 0, 0, 0, 1));
  const torn = new FileRaftStorage(fs, 'data/raft');
  t.same(
    torn.load().entries.map((x) => x.index),
    [3, 4, 5],
  );
  t.equal(torn.report.truncatedBytes, 5);
  fs.write('data/raft/raft-state', Uint8Array.of(1, 2, 3));
  t.throws(() => new FileRaftStorage(fs, 'data/raft').load(), { code: RaftErrorCode.Storage, message: /raft-state is corrupt/ });
});

t.test('messages round-trip; hostile bytes give RaftError only', async (t) => {
  const messages: RaftMessage[] = [
    { type: 'prevote', term: 2, lastIndex: 5, lastTerm: 1 },
    { type: 'prevote-reply', term: 2, granted: true },
    { type: 'vote', term: 2, lastIndex: 5, lastTerm: 1 },
    { type: 'vote-reply', term: 2, granted: false },
    { type: 'append', term: 2, prevIndex: 4, prevTerm: 1, entries: [{ index: 5, term: 2, command: Uint8Array.of(1) }], commit: 3, seq: 7 },
    { type: 'append-reply', term: 2, success: true, matchIndex: 5, seq: 7 },
    { type: 'snapshot', term: 2, lastIndex: 9, lastTerm: 2, data: Uint8Array.of(1, 2), seq: 8 },
    { type: 'snapshot-reply', term: 2, matchIndex: 9, seq: 8 },
  ];
  for (const m of messages) t.same(decodeRaftMessage(encodeRaftMessage(m)), m, m.type);
  const gap = encodeRaftMessage({ type: 'append', term: 2, prevIndex: 4, prevTerm: 1, entries: [{ index: 7, term: 2, command: Uint8Array.of(1) }], commit: 3, seq: 1 });
  t.throws(() => decodeRaftMessage(gap), { code: RaftErrorCode.Decode, message: /without gaps/ });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeRaftMessage(bytes);
      } catch (err) {
        if (!(err instanceof RaftError)) throw err;
      }
    }),
    { numRuns: 2000 },
  );
});

t.test('caughtUp: the leader once its no-op is applied; a restarted member only once the leader has told it what is committed', async (t) => {
  const c = new IpamCluster({ seed: 8, masters: 3, overlay: SCENARIO_OVERLAY, link: { latency: { kind: 'constant', ms: 1 } } });
  c.sim.runFor(3000);
  const leader = c.leader() as string;
  t.ok(leader !== undefined, `leader ${leader}`);
  for (let i = 0; i < 3; i++) c.allocate(`agent-${i}`, () => undefined);
  c.sim.runFor(500);
  for (const name of c.names) t.equal(c.node(name).caughtUp, true, `${name} caught up`);
  const follower = c.names.find((n) => n !== leader) as string;
  c.crash(follower);
  c.sim.runFor(10);
  // Restarted out of the leader's reach: its log is on disk, its state machine empty.
  c.sim.network.partition([[follower], c.names.filter((n) => n !== follower)]);
  c.restart(follower);
  c.sim.runFor(1000);
  t.equal(c.replica(follower).agentCount, 0, 'nothing applied after the restart');
  t.equal(c.node(follower).caughtUp, false, 'so it is not caught up');
  c.sim.network.heal();
  c.sim.runFor(1000);
  t.equal(c.node(follower).caughtUp, true, 'caught up once the leader reached it');
  t.equal(c.replica(follower).agentCount, 3);
  // Cut off from the leader without a restart: it keeps its term, but its state ages.
  c.sim.network.partition([[follower], c.names.filter((n) => n !== follower)]);
  c.sim.runFor(100);
  t.equal(c.node(follower).caughtUp, true, 'within an election timeout of the last append');
  c.sim.runFor(2000);
  t.equal(c.node(follower).caughtUp, false, 'not after an election timeout without one');
  c.sim.network.heal();
  c.sim.runFor(1000);
  t.equal(c.node(follower).caughtUp, true, 'caught up again once healed');
  // After an election, the members left catch up under the new leader (its no-op applied).
  c.crash(leader);
  c.sim.runFor(3000);
  const next = c.leader() as string;
  t.not(next, leader);
  for (const name of c.names.filter((n) => n !== leader)) t.equal(c.node(name).caughtUp, true, `${name} caught up under ${next}`);
  t.same(c.violations, []);
});
