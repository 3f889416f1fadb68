/**
 * The allocator under faults, deterministic by seed: 3 and 5 masters, random crashes and
 * restarts from persisted state, partitions, loss, duplication and reordering, over 1,000 seeds.
 * Checked at every step (see src/ipam/sim-cluster.ts): one leader per term, identical entries at
 * each applied index, matching logs, unique subnets, VTEP IPs and MACs in every replica,
 * acknowledged allocations kept; and once healed, every allocation completes within 10 s.
 */
import t from 'tap';
import { IpamState } from '../../src/ipam/index.js';
import { type ScenarioResult, runScenario } from '../../src/testing/index.js';

const SEEDS = Number(process.env['LASHUP_RAFT_SEEDS'] ?? 1000);
const LIVENESS_BOUND_MS = 10_000;

t.test(`${SEEDS} seeds of 3 and 5 masters: safe, and live once healed`, async (t) => {
  const failures: ScenarioResult[] = [];
  let allocations = 0;
  let crashes = 0;
  let partitions = 0;
  let slowest = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = runScenario({ seed, masters: seed % 2 === 1 ? 3 : 5, faultyMs: 6000, livenessBoundMs: LIVENESS_BOUND_MS });
    allocations += r.allocations;
    crashes += r.crashes;
    partitions += r.partitions;
    slowest = Math.max(slowest, r.slowestAfterHealMs);
    if (r.violations.length > 0 || r.stuck > 0) failures.push(r);
  }
  t.same(
    failures.map((f) => ({ seed: f.seed, stuck: f.stuck, violations: f.violations.slice(0, 3) })),
    [],
    'no safety violation and no stuck allocation in any seed',
  );
  t.ok(crashes > SEEDS && partitions > SEEDS / 2, `${crashes} crashes and ${partitions} partitions exercised`);
  t.ok(allocations > SEEDS * 20, `${allocations} allocations`);
  t.ok(slowest < LIVENESS_BOUND_MS, `slowest allocation after healing: ${Math.round(slowest)} ms (bound ${LIVENESS_BOUND_MS} ms)`);
});

t.test('the checker catches a broken allocator (two agents given one block)', async (t) => {
  const original = (IpamState.prototype as unknown as { reserveBlock: (...a: unknown[]) => number }).reserveBlock;
  (IpamState.prototype as unknown as { reserveBlock: (...a: unknown[]) => number }).reserveBlock = function (...args: unknown[]) {
    const index = original.apply(this, args);
    return Math.min(index, 0);
  };
  t.teardown(() => {
    (IpamState.prototype as unknown as { reserveBlock: unknown }).reserveBlock = original;
  });
  const r = runScenario({ seed: 3, masters: 3, faultyMs: 3000, livenessBoundMs: LIVENESS_BOUND_MS });
  t.ok(
    r.violations.some((v) => v.includes('given to both')),
    `caught: ${r.violations[0]}`,
  );
});
