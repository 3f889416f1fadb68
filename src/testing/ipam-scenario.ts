/**
 * One randomized fault scenario for the allocator (shared by the simulation tests and the raft
 * benchmark's soak): masters under loss, duplication and reordering; random crashes and
 * restarts from persisted state; random partitions; clients allocating throughout. After the
 * faults stop (everything healed and restarted), every allocation must complete within
 * `liveness bound`.
 */
import { IpamCluster } from './ipam-cluster.js';
import { DEFAULT_OVERLAY_CONFIG, type OverlayConfig } from '../ipam/config.js';

export interface ScenarioOptions {
  seed: number;
  masters: number;
  /** Virtual time with faults, ms. */
  faultyMs: number;
  /** Once healed, every pending allocation must complete within this, ms. */
  livenessBoundMs: number;
  /** Called once the faults stop (tests trace from there). */
  onHealed?: () => void;
}

export interface ScenarioResult {
  seed: number;
  violations: string[];
  allocations: number;
  completed: number;
  /** Pending allocations still incomplete at the bound (a liveness failure if > 0). */
  stuck: number;
  /** Slowest completion after the heal, ms. */
  slowestAfterHealMs: number;
  crashes: number;
  partitions: number;
  leaders: number;
}

/** DC/OS's overlay, smaller (a /22 of VTEPs, a /16 network) so that simulations hit exhaustion. */
export const SCENARIO_OVERLAY: OverlayConfig = {
  ...DEFAULT_OVERLAY_CONFIG,
  vtepSubnet: '44.128.0.0/22',
  networks: [{ name: 'dcos', subnet: '9.0.0.0/16', prefix: 24 }, ...DEFAULT_OVERLAY_CONFIG.networks.slice(1)],
};

export function runScenario(options: ScenarioOptions): ScenarioResult {
  const probe = new IpamCluster({ seed: options.seed, masters: options.masters, overlay: SCENARIO_OVERLAY });
  const knobs = probe.sim.rng.fork('knobs');
  const loss = knobs.next() * 0.1;
  const c = new IpamCluster({
    seed: options.seed,
    masters: options.masters,
    overlay: SCENARIO_OVERLAY,
    link: {
      latency: { kind: 'uniform', minMs: 0.2, maxMs: 5 },
      lossProbability: loss,
      duplicateProbability: knobs.next() * 0.05,
      reorderProbability: knobs.next() * 0.2,
      reorderDelayMs: 20,
    },
  });
  const rng = c.sim.rng.fork('faults');
  const down = new Set<string>();
  const result: ScenarioResult = { seed: options.seed, violations: c.violations, allocations: 0, completed: 0, stuck: 0, slowestAfterHealMs: 0, crashes: 0, partitions: 0, leaders: 0 };
  const pending = new Set<string>();
  let healedAt = Infinity;
  const allocate = (): void => {
    const agent = `agent-${result.allocations++}`;
    pending.add(agent);
    c.allocate(agent, (_lease, atMs) => {
      if (!pending.delete(agent)) return;
      result.completed++;
      if (atMs > healedAt) result.slowestAfterHealMs = Math.max(result.slowestAfterHealMs, atMs - healedAt);
    });
  };
  let partitionedUntil = -1;
  for (let t = 0; t < options.faultyMs; t += 50) {
    if (rng.chance(0.25)) allocate();
    if (rng.chance(0.01) && down.size < options.masters) {
      const victim = rng.pick(c.names.filter((n) => !down.has(n)));
      c.crash(victim);
      down.add(victim);
      result.crashes++;
    }
    if (down.size > 0 && rng.chance(0.02)) {
      const back = rng.pick([...down]);
      c.restart(back);
      down.delete(back);
    }
    if (partitionedUntil < 0 && rng.chance(0.01)) {
      const shuffled = rng.shuffle([...c.names]);
      const cut = 1 + rng.int(options.masters - 1);
      c.sim.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      partitionedUntil = t + 500 + rng.int(3000);
      result.partitions++;
    }
    if (partitionedUntil >= 0 && t >= partitionedUntil) {
      c.sim.network.heal();
      partitionedUntil = -1;
    }
    c.sim.runFor(50);
    if (t % 500 === 0) c.checkLogs();
  }
  c.sim.network.heal();
  for (const name of down) c.restart(name);
  down.clear();
  healedAt = c.sim.nowMs();
  options.onHealed?.();
  // One more allocation after healing: the cluster must be able to serve it within the bound.
  allocate();
  const deadline = healedAt + options.livenessBoundMs;
  const settled = (): boolean => {
    const leader = c.leader();
    if (pending.size > 0 || leader === undefined) return false;
    const commit = c.node(leader).commitIndex;
    return c.names.every((n) => c.node(n).lastApplied >= commit);
  };
  while (!settled() && c.sim.nowMs() < deadline) c.sim.runFor(100);
  c.checkLogs();
  result.stuck = pending.size;
  result.leaders = new Set(c.names.map((n) => `${c.node(n).term}:${c.node(n).leaderId}`)).size;
  // Every replica converges to the same allocations once healed.
  const hashes = new Set(c.names.map((n) => c.stateHash(n)));
  if (hashes.size !== 1) {
    c.violations.push(
      `replicas hold different allocations after healing: ${c.names
        .map((n) => `${n} ${c.node(n).role} t${c.node(n).term} commit ${c.node(n).commitIndex} applied ${c.node(n).lastApplied} last ${c.node(n).lastIndex} agents ${c.replica(n).agentCount}`)
        .join('; ')}`,
    );
  }
  return result;
}
