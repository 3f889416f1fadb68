/**
 * The build's warm-up of the bundled program before its code cache is written (code-cache.ts,
 * tools/bundle.mjs): V8 caches the functions compiled so far, and most of a daemon's are compiled
 * lazily, at their first call. So this runs what a starting agent runs on the way to its routes,
 * as far as it can without root: a configuration parsed, a master and an agent on 127.0.0.1
 * (libp2p, noise, yamux, gossipsub, SWIM over UDP, Raft), the agent's join and its lease.
 *
 * Measured (a master's start to "lashup daemon started", CPU median of 12): a cache made after
 * `--version` alone 250 ms, after this 220 ms, after a real daemon's first 3 s 210 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LashupNode, parseConfigText, type NodeOptions } from '../daemon/index.js';
import { generateClusterKey } from '../net/index.js';

/** How long the warm-up waits for the agent's lease before it stops anyway. */
const LEASE_WAIT_MS = 10_000;

/** Runs the warm-up; resolves whether the agent got its lease (the cache is written either way). */
export async function warmUp(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-warm-up-'));
  const key = generateClusterKey();
  parseConfigText(
    JSON.stringify({ name: 'a1', role: 'agent', underlayIp: '127.0.0.1', dataDir: join(dir, 'config-check'), masters: ['m1'], seeds: ['127.0.0.1:62502'], cluster: { keys: [key] } }),
    'warm-up',
  );
  const common = {
    clusterKeys: [key],
    label: 'warm-up',
    bindHost: '127.0.0.1',
    underlayIp: '127.0.0.1',
    udpPort: 0,
    libp2pPort: 0,
    packetTransport: 'udp',
    masters: ['m1'],
  } satisfies Partial<NodeOptions>;
  const nodes: LashupNode[] = [];
  try {
    const master = await LashupNode.start({ ...common, name: 'm1', role: 'master', dataDir: join(dir, 'm1'), seeds: [] });
    nodes.push(master);
    const agent = await LashupNode.start({ ...common, name: 'a1', role: 'agent', dataDir: join(dir, 'a1'), seeds: [String(master.libp2p.multiaddrs[0])] });
    nodes.push(agent);
    const deadline = Date.now() + LEASE_WAIT_MS;
    while (agent.lease?.current === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return agent.lease?.current !== undefined;
  } finally {
    for (const node of nodes.reverse()) await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
