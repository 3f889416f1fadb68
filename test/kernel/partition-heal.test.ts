/**
 * A healed partition merges although every bounded peer set lies on one side of it.
 *
 * Two hosts (network namespaces on a test switch), five nodes on each, peer degree 2. The
 * partition drops everything between the hosts; each side declares the other failed and its
 * peer sets refill from its own side only, so when the partition heals no kept connection
 * crosses the old line. Writes made on both sides while apart must still reach every node, and
 * the peer sets must reach across again, without any operator action.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateClusterKey } from '../../src/net/index.js';
import { WorkerHandle, type WorkerEvent } from '../../bench/lib/cluster-parent.js';
import { kernelTestSkip, TestNet } from '../helpers/netns.js';
import { until } from '../helpers/until.js';

const skip = await kernelTestSkip();

interface NodeStats {
  name: string;
  live: number;
  keptPeers: string[];
}

t.test('a partition heals and merges across peer sets that all lay on one side', { skip, timeout: 300_000 }, async (t) => {
  const net = await TestNet.create({ hosts: 2 });
  t.teardown(() => net.destroy());
  const dir = mkdtempSync(join(tmpdir(), 'lashup-heal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [h1, h2] = net.hosts as [(typeof net.hosts)[0], (typeof net.hosts)[0]];
  const script = new URL('../../bench/lib/cluster-worker.ts', import.meta.url).pathname;
  const workers = [WorkerHandle.spawn(script, process.execArgv, h1.ns), WorkerHandle.spawn(script, process.execArgv, h2.ns)] as const;
  t.teardown(() =>
    workers.forEach((w) => {
      w.kill();
    }),
  );
  const key = generateClusterKey();
  const sideOf = (name: string): 'a' | 'b' => (name.startsWith('a') ? 'a' : 'b');
  const spec = (name: string, host: string, seeds: string[]) => ({ name, host, seeds, dataDir: join(dir, name), clusterKey: key, label: 'heal', packetTransport: 'udp', peerDegree: 2 });

  const started = async (w: WorkerHandle, count: number): Promise<WorkerEvent> => {
    await until(() => w.events.filter((e) => e.evt === 'started' || e.evt === 'error').length >= count, 60_000, 'worker started its nodes', 50);
    const last = w.events.filter((e) => e.evt === 'started' || e.evt === 'error').at(-1) as WorkerEvent;
    if (last.evt === 'error') throw new Error(`worker failed: ${String(last['message'])}`);
    return last;
  };
  workers[0].send({ cmd: 'start', nodes: [spec('a0', h1.ip, [])] });
  const first = (await started(workers[0], 1))['nodes'] as { libp2p: string }[];
  const m = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(first[0]?.libp2p ?? '') as RegExpExecArray;
  const seed = `${m[1]}:${m[2]}`;
  workers[0].send({ cmd: 'start', nodes: ['a1', 'a2', 'a3', 'a4'].map((n) => spec(n, h1.ip, [seed])) });
  workers[1].send({ cmd: 'start', nodes: ['b0', 'b1', 'b2', 'b3', 'b4'].map((n) => spec(n, h2.ip, [seed])) });
  await Promise.all([started(workers[0], 2), started(workers[1], 1)]);

  /** Every node's stats, fresh from both workers. */
  const stats = async (): Promise<NodeStats[]> => {
    const events = await Promise.all(workers.map((w) => w.stats()));
    return events.flatMap((e) => e['nodes'] as NodeStats[]);
  };
  /** Polls stats until `check` holds for every node; returns the last stats. */
  const eventually = async (check: (n: NodeStats) => boolean, ms: number, what: string): Promise<NodeStats[]> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const all = await stats();
      if (all.length === 10 && all.every(check)) return all;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms; ${JSON.stringify(all.map((n) => [n.name, n.live, n.keptPeers]))}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const formed = await eventually((n) => n.live === 10, 60_000, 'all 10 alive everywhere');
  t.ok(
    formed.every((n) => n.keptPeers.length <= 2),
    'peer sets hold at most the degree (2)',
  );

  await net.isolate(h1, [h2.ip]);
  await net.isolate(h2, [h1.ip]);
  await eventually((n) => n.live === 5, 60_000, 'each side declared the other failed');
  const apart = await eventually((n) => n.keptPeers.length === 2 && n.keptPeers.every((p) => sideOf(p) === sideOf(n.name)), 30_000, 'peer sets refilled on their own side');
  t.ok(
    apart.every((n) => n.keptPeers.every((p) => sideOf(p) === sideOf(n.name))),
    "while apart, every kept peer lies on the node's own side",
  );

  const applied = (node: string, k: string): boolean => workers.some((w) => w.events.some((e) => e.evt === 'applied' && e.node === node && e.key === k));
  workers[0].send({ cmd: 'update', node: 'a0', key: 'bench/side-a', value: 'a' });
  workers[1].send({ cmd: 'update', node: 'b0', key: 'bench/side-b', value: 'b' });
  const names = [...['a1', 'a2', 'a3', 'a4'], ...['b1', 'b2', 'b3', 'b4']];
  await until(() => names.every((n) => applied(n, `bench/side-${sideOf(n)}`)), 20_000, "each side's write reaches its own side", 50);
  t.notOk(
    names.some((n) => applied(n, `bench/side-${sideOf(n) === 'a' ? 'b' : 'a'}`)),
    'and not the other side while apart',
  );

  const healedAt = Date.now();
  await net.heal(h1);
  await net.heal(h2);
  await eventually((n) => n.live === 10, 90_000, 'all 10 alive everywhere after healing');
  t.pass(`membership merged ${Date.now() - healedAt} ms after healing`);
  const everyone = ['a0', 'b0', ...names];
  await until(() => everyone.every((n) => (n === 'a0' || applied(n, 'bench/side-a')) && (n === 'b0' || applied(n, 'bench/side-b'))), 60_000, "both sides' writes reach every node", 50);
  t.pass(`writes made apart reached every node ${Date.now() - healedAt} ms after healing`);
  const across = (await stats()).filter((n) => n.keptPeers.some((p) => sideOf(p) !== sideOf(n.name))).length;
  t.ok(across > 0, `${across} of 10 nodes keep a peer across the old line`);

  // A write after healing travels the mixed peer graph to everyone.
  workers[1].send({ cmd: 'update', node: 'b3', key: 'bench/after', value: 1 });
  await until(() => everyone.every((n) => n === 'b3' || applied(n, 'bench/after')), 60_000, 'a write after healing reaches every node', 50);
  t.pass('a write after healing reached every node');
  for (const w of workers) w.send({ cmd: 'stop' });
  await until(() => workers.every((w) => w.hasExited), 15_000, 'workers stopped', 50);
});
