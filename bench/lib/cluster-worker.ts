/**
 * A child process running one or more lashup nodes on 127.0.0.1, driven over IPC by a parent
 * (the cross-process tests and the cluster benchmark). Timestamps are absolute milliseconds
 * (performance.timeOrigin + performance.now()), comparable across processes on one machine.
 *
 * parent -> worker:  { cmd: 'start', nodes: WorkerNodeSpec[] }
 *                    { cmd: 'update', node, key, value }
 *                    { cmd: 'stats' }   { cmd: 'stop' }
 *                    { cmd: 'profile-start' }   { cmd: 'profile-stop', path }  (a CPU profile of a window)
 * worker -> parent:  { evt: 'started', nodes: [{ name, libp2p, udp }] }
 *                    { evt: 'lease', node, lease, atMs }   (agents)
 *                    { evt: 'raft', node, role, term, leader, atMs }   (masters)
 *                    { evt: 'applied', node, key, atMs }      (a kv change under 'bench/')
 *                    { evt: 'member', node, type, member, atMs }
 *                    { evt: 'stats', cpuUserUs, cpuSystemUs, rssBytes, loopDelayP99Ms, loopDelayMaxMs, nodes: [...] }
 *                    { evt: 'profiled', path }
 *                    { evt: 'batch', events }   (applied and member events, several at once)
 *                    { evt: 'error', message }
 */
import '../../src/polyfills.js';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LashupNode, type NodeOptions } from '../../src/daemon/index.js';
import { createLogger, type Logger } from '../../src/log/index.js';
import { RealClock } from '../../src/common/index.js';
import { decodeResult, encodeLeaseRequest, IPAM_PROTOCOL } from '../../src/ipam/index.js';
import { RpcClient, type Libp2pNode } from '../../src/net/index.js';

export interface WorkerNodeSpec {
  name: string;
  dataDir: string;
  seeds: string[];
  clusterKey: string;
  label: string;
  packetTransport: 'udp' | 'libp2p';
  role?: 'master' | 'agent';
  masters?: string[];
  /** Address to bind and advertise. Default 127.0.0.1. */
  host?: string;
  /** NodeOptions.peerDegree. */
  peerDegree?: number;
  /** NodeOptions.peerRotateIntervalMs. */
  peerRotateIntervalMs?: number;
  /** Write `formation/<name>` at start (the cluster benchmark's formation check). */
  formationKey?: boolean;
}

type Command =
  | { cmd: 'start'; nodes: WorkerNodeSpec[] }
  | { cmd: 'update'; node: string; key: string; value: unknown }
  | { cmd: 'stats' }
  | { cmd: 'allocate-many'; node: string; prefix: string; count: number; concurrency: number; timeoutMs: number }
  | { cmd: 'profile-start' }
  | { cmd: 'profile-stop'; path: string }
  | { cmd: 'stop' };

const now = (): number => performance.timeOrigin + performance.now();
const nodes = new Map<string, LashupNode>();
/**
 * How late this process's event loop ran since it started (a busy process's nodes answer late),
 * with LASHUP_BENCH_DEBUG=1 only: the histogram samples on a 20 ms timer, which would add 50
 * wake-ups a second to the idle CPU the benchmark measures.
 */
const loopDelay = process.env['LASHUP_BENCH_DEBUG'] === '1' ? monitorEventLoopDelay({ resolution: 20 }) : undefined;
loopDelay?.enable();
let profiler: Session | undefined;

function send(message: unknown): void {
  process.send?.(message);
}

/**
 * Events sent many at a time (a store change applied at every node, membership changes): held
 * for BATCH_MS and sent as one { evt: 'batch', events } message. One IPC message per event per
 * node was 5 % of a 7-node process's CPU while updates spread, load the nodes being measured do
 * not have in production; flushed at the next turn of the event loop instead, the IPC writes
 * were still 9 % of a 7-node process's CPU over the 60-node updates (a profile: one write per
 * node's delivery, as each node applies a delta in its own turn). Timestamps are taken when the
 * event happens, so the wait changes no measured latency, only when the parent learns of it.
 */
const BATCH_MS = 10;
const batched: unknown[] = [];
function sendBatched(message: unknown): void {
  batched.push(message);
  if (batched.length > 1) return;
  setTimeout(() => {
    const events = batched.splice(0);
    send(events.length === 1 ? events[0] : { evt: 'batch', events });
  }, BATCH_MS);
}

async function start(specs: WorkerNodeSpec[]): Promise<void> {
  const debugLog = debugLogger();
  const started = await Promise.all(
    specs.map(async (spec) => {
      const times: { upAtMs?: number; firstMemberAtMs?: number; lastMemberAtMs?: number } = {};
      if (debugLog !== undefined) joinTimes.set(spec.name, times);
      const options: NodeOptions = {
        name: spec.name,
        dataDir: spec.dataDir,
        role: spec.role ?? 'agent',
        ...(spec.masters === undefined ? {} : { masters: spec.masters }),
        underlayIp: spec.host ?? '127.0.0.1',
        clusterKeys: [spec.clusterKey],
        label: spec.label,
        bindHost: spec.host ?? '127.0.0.1',
        ...(spec.peerDegree === undefined ? {} : { peerDegree: spec.peerDegree }),
        ...(spec.peerRotateIntervalMs === undefined ? {} : { peerRotateIntervalMs: spec.peerRotateIntervalMs }),
        udpPort: 0,
        libp2pPort: 0,
        seeds: spec.seeds,
        packetTransport: spec.packetTransport,
        ...(debugLog === undefined ? {} : { logger: debugLog }),
      };
      const node = await LashupNode.start(options);
      times.upAtMs = now();
      nodes.set(spec.name, node);
      if (process.env['LASHUP_BENCH_DEBUG'] === '1') recordPublishes(node);
      node.kv.subscribe('bench/', (change) => {
        if (!change.initial) sendBatched({ evt: 'applied', node: spec.name, key: change.key, atMs: now() });
      });
      node.onLease((lease) => send({ evt: 'lease', node: spec.name, lease, atMs: now() }));
      node.onAllocatorState((state) => send({ evt: 'raft', node: spec.name, role: state.role, term: state.term, leader: state.leader, atMs: now() }));
      // Joins and metadata updates are not forwarded: at 200 nodes they are 40,000 messages at
      // formation, which loaded the machine being measured.
      node.membership.on((event) => {
        if (debugLog !== undefined && event.type === 'join') {
          times.firstMemberAtMs ??= now();
          times.lastMemberAtMs = now();
        }
        if ('member' in event && event.type !== 'join' && event.type !== 'update') sendBatched({ evt: 'member', node: spec.name, type: event.type, member: event.member.name, atMs: now() });
      });
      // Formation is complete when every node holds every node's key.
      if (spec.formationKey === true) node.kv.update(`formation/${spec.name}`, (m) => m.lww('v').write(node.kv.marker(), 1));
      return { name: spec.name, libp2p: node.libp2p.multiaddrs[0], udp: node.udp?.localAddress };
    }),
  );
  send({ evt: 'started', nodes: started });
}

/**
 * Lease requests for `count` made-up agents straight to the leader, `concurrency` at a time,
 * following redirects: the allocator's throughput and latency without starting 1,000 nodes.
 */
async function allocateMany(node: LashupNode, prefix: string, count: number, concurrency: number, timeoutMs: number): Promise<void> {
  const rpc = new RpcClient(node.libp2p, new RealClock(), IPAM_PROTOCOL, timeoutMs);
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = now();
  const one = async (agent: string): Promise<void> => {
    const t0 = now();
    for (let attempt = 0; attempt < 50; attempt++) {
      const masters = node.masterInfos();
      const leader = masters.filter((m) => m.leader).sort((a, b) => b.term - a.term)[0] ?? masters[attempt % Math.max(1, masters.length)];
      if (leader === undefined) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      try {
        const result = decodeResult(await rpc.call(leader.address, encodeLeaseRequest('allocate', agent)));
        if (result.ok) {
          latencies.push(now() - t0);
          return;
        }
      } catch {
        // Retry below.
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    errors++;
  };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await one(`${prefix}${next++}`);
    }),
  );
  rpc.close();
  send({ evt: 'allocated', node: node.name, latencies, errors, totalMs: now() - started });
}

/** Publishes of each node (debug runs): when, and which peers gossipsub sent each to. */
const publishLog = new Map<LashupNode, { atMs: number; to: string[] }[]>();

/**
 * Debug runs: anti-entropy's failed rounds by reason, from its debug log (every other component
 * is silent, as without debug: their lines would load the machine being measured).
 */
const aeFailures = new Map<string, number>();
function debugLogger(): Logger | undefined {
  if (process.env['LASHUP_BENCH_DEBUG'] !== '1') return undefined;
  const root = createLogger({
    level: 'silent',
    destination: {
      write(line: string): void {
        try {
          const entry = JSON.parse(line) as { msg?: string; err?: string };
          if (entry.msg !== 'anti-entropy round failed') return;
          const reason = String(entry.err)
            .replace(/[0-9a-zA-Z]{40,}/g, '<id>')
            .replace(/\/tcp\/[0-9]+/g, '/tcp/<port>')
            .slice(0, 160);
          aeFailures.set(reason, (aeFailures.get(reason) ?? 0) + 1);
        } catch {
          // Not JSON: ignore.
        }
      },
    },
  });
  // Every child is wrapped too: the node's components are children of children of the root.
  const wrap = (logger: Logger): Logger =>
    new Proxy(logger, {
      get(target, prop, receiver) {
        if (prop === 'child') return (bindings: { component?: string }) => wrap(bindings.component === 'anti-entropy' ? target.child(bindings, { level: 'debug' }) : target.child(bindings));
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
  return wrap(root);
}

/**
 * Debug runs: when each node was up (LashupNode.start returned), first heard of another member
 * (its join answered) and last heard of a new one.
 */
const joinTimes = new Map<string, { upAtMs?: number; firstMemberAtMs?: number; lastMemberAtMs?: number }>();

function recordPublishes(node: LashupNode): void {
  const pubsub = (node.libp2p as Libp2pNode).libp2p.services.pubsub as unknown as { publish: (topic: string, data: Uint8Array, options?: unknown) => Promise<{ recipients: unknown[] }> };
  const publish = pubsub.publish.bind(pubsub);
  const entries: { atMs: number; to: string[] }[] = [];
  publishLog.set(node, entries);
  pubsub.publish = async (topic, data, options) => {
    const result = await publish(topic, data, options);
    if (entries.length < 20) entries.push({ atMs: Math.round(now()), to: result.recipients.map(String) });
    return result;
  };
}

function stats(): void {
  const cpu = process.cpuUsage();
  send({
    evt: 'stats',
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rssBytes: process.memoryUsage().rss,
    memory: process.memoryUsage(),
    loopDelayP99Ms: loopDelay === undefined ? undefined : Math.round(loopDelay.percentile(99) / 1e6),
    loopDelayMaxMs: loopDelay === undefined ? undefined : Math.round(loopDelay.max / 1e6),
    aeFailures: Object.fromEntries(aeFailures),
    nodes: [...nodes.values()].map((n) => ({
      name: n.name,
      peerId: (n.libp2p as Libp2pNode).peerId,
      publishes: publishLog.get(n),
      live: n.membership.liveCount,
      connections: (n.libp2p as Libp2pNode).libp2p.getConnections().length,
      formationKeys: n.kv.keys('formation/').length,
      formationHave: n.kv.keys('formation/').length < 1000 ? n.kv.keys('formation/').map((k) => k.slice('formation/'.length)) : [],
      kept: n.peers.stats.kept,
      keptPeers: n.peers.peerSet.names,
      joinAttempts: n.membership.stats.joinAttempts,
      joinTimes: joinTimes.get(n.name),
      joinError: n.membership.lastJoinError?.message,
      subscribers: ((n.libp2p as Libp2pNode).libp2p.services.pubsub as unknown as { getSubscribers(topic: string): unknown[] }).getSubscribers('lashup/kv/1').length,
      gossipStreams: ((n.libp2p as Libp2pNode).libp2p.services.pubsub as unknown as { streamsOutbound: Map<string, unknown> }).streamsOutbound.size,
      mesh: ((n.libp2p as Libp2pNode).libp2p.services.pubsub as unknown as { getMeshPeers(topic: string): unknown[] }).getMeshPeers('lashup/kv/1').length,
      udp: n.udp?.stats,
      libp2p: n.libp2p.stats,
      membership: n.membership.stats,
      kv: n.kv.stats,
      antiEntropy: n.antiEntropy.stats,
      peers: n.peers.stats,
      allocator: n.allocator === undefined ? undefined : { role: n.allocator.raft.role, term: n.allocator.raft.term, commit: n.allocator.raft.commitIndex, agents: n.allocator.state.agentCount },
      lease: n.lease?.current,
    })),
  });
}

process.on('message', (raw) => {
  const command = raw as Command;
  const run = async (): Promise<void> => {
    switch (command.cmd) {
      case 'start':
        await start(command.nodes);
        return;
      case 'update': {
        const node = nodes.get(command.node);
        if (node === undefined) throw new Error(`no node ${command.node} here`);
        const marker = node.kv.marker();
        node.kv.update(command.key, (m) => m.lww('v').write(marker, command.value));
        return;
      }
      case 'stats':
        stats();
        return;
      case 'allocate-many': {
        const node = nodes.get(command.node);
        if (node === undefined) throw new Error(`no node ${command.node} here`);
        await allocateMany(node, command.prefix, command.count, command.concurrency, command.timeoutMs);
        return;
      }
      case 'profile-start':
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.start');
        return;
      case 'profile-stop': {
        if (profiler === undefined) throw new Error('no profile was started');
        const { profile } = await profiler.post('Profiler.stop');
        writeFileSync(command.path, JSON.stringify(profile));
        profiler.disconnect();
        profiler = undefined;
        send({ evt: 'profiled', path: command.path });
        return;
      }
      case 'stop':
        await Promise.all([...nodes.values()].map((n) => n.stop()));
        process.exit(0);
    }
  };
  run().catch((err: unknown) => send({ evt: 'error', message: err instanceof Error ? err.message : String(err) }));
});

process.on('disconnect', () => process.exit(0));
