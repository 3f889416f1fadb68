/**
 * One observation of a namespace cluster for the checks: every running node's membership view
 * (its API), every running agent's lashup routes (its kernel, `ip route ... proto 76`), the
 * leases the agents stored, and the allocator's leases from the master that leads Raft. Reads
 * only; each read is bounded in time, and a node that does not answer is recorded as not
 * agreeing rather than stalling the lab.
 */
import type { NetnsCluster } from '../demo/index.js';
import { run } from '../demo/index.js';
import type { LeaseView, Observation } from './checks.js';
import type { World } from './world.js';

/** How long one node's API may take to answer an observation. */
const READ_TIMEOUT_MS = 3000;

interface MemberRow {
  name: string;
  state: string;
}

export async function observe(cluster: NetnsCluster, world: World, nowMs: () => number): Promise<Observation> {
  const running = [...world.nodes.values()].filter((n) => n.running);
  const members = new Map<string, Map<string, string>>();
  const routes = new Map<string, Set<string>>();
  const leases = new Map<string, LeaseView>();
  await Promise.all([
    ...running.map(async (n) => {
      try {
        const reply = await cluster.api(n.name, 'GET', '/v1/members', READ_TIMEOUT_MS);
        if (reply.status !== 200) return;
        members.set(n.name, new Map((JSON.parse(reply.body) as MemberRow[]).map((m) => [m.name, m.state])));
      } catch {
        // Not answering: its view does not agree (absent from the map).
      }
    }),
    ...running
      .filter((n) => n.role === 'agent')
      .map(async (n) => {
        const host = cluster.nodes.get(n.name)?.host;
        if (host === undefined) return;
        const listed = await run(['ip', '-n', host.ns, 'route', 'show', 'proto', '76'], READ_TIMEOUT_MS);
        if (listed.code !== 0) return;
        routes.set(
          n.name,
          new Set(
            listed.stdout
              .split('\n')
              .map((l) => l.split(' ')[0] ?? '')
              .filter((d) => d !== ''),
          ),
        );
      }),
  ]);
  for (const n of world.agents) {
    if (!n.started) continue;
    const lease = cluster.leaseOf(n.name);
    if (lease !== undefined) leases.set(n.name, lease);
  }
  const allocations = await leaderAllocations(cluster, world);
  return { atMs: nowMs(), members, routes, leases, ...(allocations === undefined ? {} : { allocations }) };
}

/** The running master that says it leads Raft with the highest term (a deposed leader in a minority may still claim it). */
export async function findLeader(cluster: NetnsCluster, world: World): Promise<string | undefined> {
  let best: { name: string; term: number } | undefined;
  await Promise.all(
    [...world.nodes.values()]
      .filter((n) => n.role === 'master' && n.running)
      .map(async (n) => {
        try {
          const reply = await cluster.api(n.name, 'GET', '/v1/status', READ_TIMEOUT_MS);
          const raft = (JSON.parse(reply.body) as { raft?: { role: string; term: number } }).raft;
          if (raft?.role === 'leader' && (best === undefined || raft.term > best.term)) best = { name: n.name, term: raft.term };
        } catch {
          // A master that does not answer leads nothing we can ask.
        }
      }),
  );
  return best?.name;
}

async function leaderAllocations(cluster: NetnsCluster, world: World): Promise<Map<string, LeaseView> | undefined> {
  const leader = await findLeader(cluster, world);
  if (leader === undefined) return undefined;
  try {
    const reply = await cluster.api(leader, 'GET', '/v1/allocations', READ_TIMEOUT_MS);
    if (reply.status !== 200) return undefined;
    const { leases } = JSON.parse(reply.body) as { leases?: LeaseView[] };
    return new Map((leases ?? []).map((l) => [l.agent, l]));
  } catch {
    return undefined;
  }
}
