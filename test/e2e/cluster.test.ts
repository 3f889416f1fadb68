/**
 * Live clusters on 127.0.0.1: real UDP, real libp2p, real timers. Within one process, and across
 * processes (workers killed with SIGKILL). Waits are for events, each with a deadline; nothing
 * sleeps to let a protocol progress.
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LashupNode, type NodeOptions } from '../../src/daemon/index.js';
import { buildPacket, encodeMessage, MessageType } from '../../src/membership/index.js';
import { generateClusterKey, UdpTransport, keyringFrom, parseHostPort } from '../../src/net/index.js';
import { RealClock } from '../../src/common/index.js';
import { until } from '../helpers/until.js';
import { WorkerHandle, type WorkerEvent } from '../../bench/lib/cluster-parent.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function options(name: string, key: string, seeds: string[], packetTransport: 'udp' | 'libp2p' = 'udp', extra: Partial<NodeOptions> = {}): NodeOptions {
  return {
    name,
    dataDir: join(dir, `${name}-${packetTransport}-${Math.random().toString(36).slice(2)}`),
    role: 'agent',
    underlayIp: '127.0.0.1',
    clusterKeys: [key],
    label: 'e2e',
    bindHost: '127.0.0.1',
    udpPort: 0,
    libp2pPort: 0,
    seeds,
    packetTransport,
    ...extra,
  };
}

function seedAddress(node: LashupNode): string {
  const m = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(node.libp2p.multiaddrs[0] as string) as RegExpExecArray;
  return `${m[1]}:${m[2]}`;
}

async function cluster(count: number, packetTransport: 'udp' | 'libp2p'): Promise<{ nodes: LashupNode[]; key: string }> {
  const key = generateClusterKey();
  const seed = await LashupNode.start(options('n0', key, [], packetTransport));
  const rest = await Promise.all(Array.from({ length: count - 1 }, (_, i) => LashupNode.start(options(`n${i + 1}`, key, [seedAddress(seed)], packetTransport))));
  const nodes = [seed, ...rest];
  await until(() => nodes.every((n) => n.membership.liveCount === count), 10_000, 'all nodes see all alive');
  return { nodes, key };
}

for (const packetTransport of ['udp', 'libp2p'] as const) {
  t.test(`in one process, packets over ${packetTransport}: join, store update everywhere, a dead node failed everywhere`, async (t) => {
    const { nodes } = await cluster(5, packetTransport);
    t.teardown(() => Promise.all(nodes.map((n) => n.kill())));
    t.pass('5 nodes joined through one seed');
    const seen = new Set<string>();
    // A change made in the turn a subscription starts arrives as part of its initial snapshot.
    for (const n of nodes) n.kv.subscribe('e2e/', (c) => void (c.new !== undefined && seen.add(n.name)));
    const writer = nodes[2] as LashupNode;
    writer.kv.update('e2e/k', (m) => m.lww('v').write(writer.kv.marker(), 'hello'));
    await until(() => seen.size === 5, 10_000, 'the update reaches every node');
    t.same(
      nodes.map((n) => n.kv.get('e2e/k')),
      nodes.map(() => ({ v: 'hello' })),
    );
    const victim = nodes[4] as LashupNode;
    await victim.kill();
    const others = nodes.slice(0, 4);
    await until(() => others.every((n) => n.membership.member('n4')?.state === 'dead'), 15_000, 'n4 failed everywhere');
    t.pass('the dead node is declared failed by all others');
    t.ok(
      others.every((n) => n.membership.member('n3')?.state === 'alive'),
      'nobody else',
    );
  });
}

t.test('a node with the wrong cluster key never joins, and says why', async (t) => {
  const { nodes } = await cluster(2, 'udp');
  const lines: string[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const intruder = await LashupNode.start(
    options('intruder', generateClusterKey(), [seedAddress(nodes[0] as LashupNode)], 'udp', { logger, membership: { joinRetryMinMs: 100, joinRetryMaxMs: 200 } }),
  );
  t.teardown(() => Promise.all([...nodes, intruder].map((n) => n.kill())));
  await until(() => intruder.membership.lastJoinError !== undefined && intruder.membership.stats.joinAttempts >= 2, 20_000, 'a failed join attempt and a retry');
  t.notOk(intruder.membership.isJoined, 'never joined');
  t.equal(nodes[0]?.membership.member('intruder'), undefined, 'the cluster never heard of it');
  t.match(intruder.membership.lastJoinError?.message ?? '', /pre-shared key mismatch\?/, 'the failure names the likely cause');
  t.ok(
    lines.some((l) => l.includes('join reached no seed') && l.includes('pre-shared key mismatch?')),
    'and the log says so',
  );
  // Its UDP packets, if any reach the cluster, fail to decrypt and are counted.
  const stranger = await UdpTransport.open({ host: '127.0.0.1', port: 0, keyring: keyringFrom([generateClusterKey()]), label: 'e2e', clock: new RealClock() });
  t.teardown(() => stranger.close());
  const before = nodes[0]?.udp?.stats.droppedDecrypt ?? 0;
  stranger.send(nodes[0]?.udp?.localAddress as string, buildPacket([encodeMessage({ type: MessageType.Ping, seq: 1, target: 'n0', source: 'x' })]));
  await until(() => (nodes[0]?.udp?.stats.droppedDecrypt ?? 0) > before, 5000, 'the foreign packet is counted');
  t.pass('a packet under another key is dropped and counted');
});

t.test('random, truncated, replayed and oversized datagrams crash nothing and are counted', async (t) => {
  const { nodes, key } = await cluster(3, 'udp');
  t.teardown(() => Promise.all(nodes.map((n) => n.kill())));
  const target = nodes[0] as LashupNode;
  const udp = target.udp as UdpTransport;
  const { host, port } = parseHostPort(udp.localAddress);
  // A datagram the target accepts, as a legitimate sender puts it on the wire to the target.
  const friend = await UdpTransport.open({ host: '127.0.0.1', port: 0, keyring: keyringFrom([key]), label: 'e2e', clock: new RealClock() });
  t.teardown(() => friend.close());
  const valid = friend.seal(udp.localAddress, buildPacket([encodeMessage({ type: MessageType.Ack, seq: 7 })]));
  const raw = createSocket('udp4');
  t.teardown(() => raw.close());
  const sendRaw = (b: Uint8Array): Promise<void> => new Promise((resolve) => raw.send(b, port, host, () => resolve()));
  for (let i = 0; i < 50; i++) await sendRaw(Buffer.from(Array.from({ length: 1 + ((i * 37) % 300) }, (_, j) => (i * 31 + j * 7) & 255)));
  for (let cut = 1; cut < valid.length; cut += 7) await sendRaw(valid.subarray(0, cut));
  await sendRaw(valid);
  await sendRaw(valid);
  await sendRaw(valid);
  await sendRaw(new Uint8Array(60_000));
  const tampered = Buffer.from(valid);
  tampered[20] = (tampered[20] as number) ^ 1;
  await sendRaw(tampered);
  const s = udp.stats;
  const truncations = Math.ceil((valid.length - 1) / 7);
  await until(() => s.droppedReplay >= 2 && s.droppedMalformed + s.droppedDecrypt >= 50 + truncations + 2, 5000, 'all counted');
  t.ok(s.droppedReplay >= 2, `${s.droppedReplay} replays dropped`);
  t.equal(s.droppedMalformed + s.droppedDecrypt, 50 + truncations + 2, `${s.droppedMalformed} malformed and ${s.droppedDecrypt} undecryptable dropped: every bad datagram counted once`);
  t.ok(s.droppedDecrypt >= 1, 'a tampered datagram fails authentication');
  t.ok(
    nodes.every((n) => n.membership.liveCount === 3),
    'the cluster is unaffected',
  );
  const w = nodes[1] as LashupNode;
  w.kv.update('e2e/after', (m) => m.lww('v').write(w.kv.marker(), 1));
  await until(() => target.kv.get('e2e/after') !== undefined, 10_000, 'still replicating');
});

t.test('across processes: workers join, replicate, and one killed with SIGKILL is failed by all', async (t) => {
  const key = generateClusterKey();
  const seed = await LashupNode.start(options('seed', key, []));
  t.teardown(() => seed.kill());
  const workerScript = new URL('../../bench/lib/cluster-worker.ts', import.meta.url).pathname;
  const workers = [0, 1, 2].map(() => WorkerHandle.spawn(workerScript, process.execArgv));
  t.teardown(() =>
    workers.forEach((w) => {
      w.kill();
    }),
  );
  workers.forEach((w, i) => {
    w.send({ cmd: 'start', nodes: [{ name: `w${i}`, dataDir: join(dir, `w${i}`), seeds: [seedAddress(seed)], clusterKey: key, label: 'e2e', packetTransport: 'udp' }] });
  });
  await Promise.all(workers.map((w) => w.waitFor((e) => e.evt === 'started' || e.evt === 'error', 60_000)));
  t.ok(
    workers.every((w) => w.events.some((e) => e.evt === 'started')),
    'every worker started its node',
  );
  await until(() => seed.membership.liveCount === 4, 15_000, 'the seed sees all workers');
  const applied = (w: WorkerHandle, key: string): boolean => w.events.some((e: WorkerEvent) => e.evt === 'applied' && e.key === key);
  seed.kv.update('bench/from-seed', (m) => m.lww('v').write(seed.kv.marker(), 1));
  await until(() => workers.every((w) => applied(w, 'bench/from-seed')), 10_000, 'the seed update reaches every worker');
  workers[0]?.send({ cmd: 'update', node: 'w0', key: 'bench/from-w0', value: 2 });
  await until(() => seed.kv.get('bench/from-w0') !== undefined && workers.slice(1).every((w) => applied(w, 'bench/from-w0')), 10_000, 'a worker update reaches all');
  t.pass('store updates cross processes both ways');
  const killedAt = Date.now();
  workers[2]?.kill('SIGKILL');
  const failed = (w: WorkerHandle): boolean => w.events.some((e) => e.evt === 'member' && e.type === 'failed' && e.member === 'w2');
  await until(() => seed.membership.member('w2')?.state === 'dead' && failed(workers[0] as WorkerHandle) && failed(workers[1] as WorkerHandle), 15_000, 'w2 failed everywhere');
  t.pass(`the SIGKILLed node was declared failed by all others in ${Date.now() - killedAt} ms`);
  t.notOk(
    workers.slice(0, 2).some((w) => w.events.some((e) => e.evt === 'member' && e.type === 'failed' && e.member !== 'w2')),
    'no false failure',
  );
  for (const w of workers.slice(0, 2)) w.send({ cmd: 'stop' });
});
