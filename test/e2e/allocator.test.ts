/**
 * The allocator on 127.0.0.1 with three master processes: agents get leases; killing the leader
 * (SIGKILL) elects another and allocation resumes; a restarted master catches up; a restarted
 * agent comes back with its lease even when no master answers.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LashupNode, type NodeOptions } from '../../src/daemon/index.js';
import { generateClusterKey } from '../../src/net/index.js';
import { until } from '../helpers/until.js';
import { WorkerHandle, type WorkerEvent } from '../../bench/lib/cluster-parent.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-alloc-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const key = generateClusterKey();
const masters = ['m0', 'm1', 'm2'];
const workerScript = new URL('../../bench/lib/cluster-worker.ts', import.meta.url).pathname;

function agentOptions(name: string, seeds: string[]): NodeOptions {
  return {
    name,
    role: 'agent',
    masters,
    dataDir: join(dir, name),
    underlayIp: '127.0.0.1',
    clusterKeys: [key],
    label: 'alloc',
    bindHost: '127.0.0.1',
    udpPort: 0,
    libp2pPort: 0,
    packetTransport: 'udp',
    seeds,
  };
}

t.test('three master processes: leases, leader failover, catch-up, lease reuse', async (t) => {
  const spawnMaster = (name: string, seeds: string[]): WorkerHandle => {
    const w = WorkerHandle.spawn(workerScript, process.execArgv);
    w.send({ cmd: 'start', nodes: [{ name, dataDir: join(dir, name), seeds, clusterKey: key, label: 'alloc', packetTransport: 'udp', role: 'master', masters }] });
    return w;
  };
  const workers = new Map<string, WorkerHandle>();
  t.teardown(() =>
    [...workers.values()].forEach((w) => {
      w.kill();
    }),
  );
  workers.set('m0', spawnMaster('m0', []));
  const started = await (workers.get('m0') as WorkerHandle).waitFor((e) => e.evt === 'started', 60_000);
  const m = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec((started.nodes as { libp2p: string }[])[0]?.libp2p ?? '') as RegExpExecArray;
  const seeds = [`${m[1]}:${m[2]}`];
  workers.set('m1', spawnMaster('m1', seeds));
  workers.set('m2', spawnMaster('m2', seeds));
  const raftEvents = (): WorkerEvent[] => [...workers.values()].flatMap((w) => w.events.filter((e) => e.evt === 'raft'));
  const currentLeader = (): { name: string; term: number } | undefined => {
    const leaders = raftEvents().filter((e) => e.role === 'leader');
    const last = leaders.sort((a, b) => (b.term as number) - (a.term as number))[0];
    return last === undefined ? undefined : { name: last.node as string, term: last.term as number };
  };
  await until(() => currentLeader() !== undefined, 30_000, 'a leader is elected');
  const agents: LashupNode[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.kill())));
  for (let i = 0; i < 3; i++) agents.push(await LashupNode.start(agentOptions(`a${i}`, seeds)));
  await until(() => agents.every((a) => a.lease?.current !== undefined), 20_000, 'every agent has a lease');
  const vteps = new Set(agents.map((a) => a.lease?.current?.vtepIp));
  const subnets = new Set(agents.map((a) => a.lease?.current?.networks['dcos']?.subnet));
  t.equal(vteps.size, 3, `distinct VTEP addresses ${[...vteps].join(', ')}`);
  t.equal(subnets.size, 3, `distinct subnets ${[...subnets].join(', ')}`);

  const old = currentLeader() as { name: string; term: number };
  const killedAt = Date.now();
  (workers.get(old.name) as WorkerHandle).kill('SIGKILL');
  await until(() => (currentLeader()?.term ?? 0) > old.term && currentLeader()?.name !== old.name, 20_000, 'another leader');
  t.pass(`${currentLeader()?.name} leads term ${currentLeader()?.term}, ${Date.now() - killedAt} ms after the kill`);
  const late = await LashupNode.start(
    agentOptions(
      'late',
      [seeds[0] as string].map((s) => (old.name === 'm0' ? s : s)),
    ),
  );
  agents.push(late);
  if (old.name === 'm0') {
    // The seed was the killed master: reach the cluster through an agent instead.
    const a = agents[0] as LashupNode;
    late.membership.join([a.libp2p.multiaddrs[0] as string]);
  }
  await until(() => late.lease?.current !== undefined, 20_000, 'allocation resumes');
  t.notOk(
    agents.slice(0, 3).some((a) => a.lease?.current?.vtepIp === late.lease?.current?.vtepIp),
    'the new lease is distinct',
  );

  // The killed master comes back from its data directory and catches up.
  workers.set(old.name, spawnMaster(old.name, [agents[0]?.libp2p.multiaddrs[0] as string]));
  const back = workers.get(old.name) as WorkerHandle;
  await back.waitFor((e) => e.evt === 'started', 60_000);
  await until(
    () => {
      back.send({ cmd: 'stats' });
      const s = back.events.filter((e) => e.evt === 'stats').pop();
      const alloc = (s?.nodes as { allocator?: { agents: number; role: string } }[] | undefined)?.[0]?.allocator;
      return alloc !== undefined && alloc.agents === 4 && alloc.role === 'follower';
    },
    30_000,
    'the restarted master holds all four allocations',
  );
  t.pass('the restarted master caught up');

  // An agent restarted while no master answers keeps its lease from disk.
  const a0 = agents[0] as LashupNode;
  const held = a0.lease?.current;
  await a0.kill();
  for (const w of workers.values()) w.kill('SIGKILL');
  const again = await LashupNode.start(agentOptions('a0', []));
  agents.push(again);
  t.same(again.lease?.current, held, 'the stored lease is reused');
});
