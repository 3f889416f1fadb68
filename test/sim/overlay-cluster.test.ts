/**
 * The daemon's shell on virtual time (issue 16): 3 masters and 50 agents, each the real node
 * runtime, overlay agent and reconciler on a fake kernel, over the simulated network. Formation,
 * a partition (a new agent joining the majority side), healing and a release, checking every
 * fake kernel's routes; the same seed gives the same run.
 */
import t, { type Test } from 'tap';
import { DEFAULT_OVERLAY_CONFIG } from '../../src/ipam/index.js';
import { SimOverlayCluster } from '../../src/testing/index.js';

interface Outcome {
  formedAtMs: number;
  healedAtMs: number;
  releasedAtMs: number;
  subnets: Record<string, string | undefined>;
  routes: Record<string, string[]>;
}

async function scenario(t: Test, seed: number, agents: number): Promise<Outcome> {
  const c = new SimOverlayCluster({ seed });
  t.teardown(() => c.stop());
  const names = Array.from({ length: agents }, (_, i) => `a${i + 1}`);
  for (const n of names) c.add(n);
  const subnetOf = (n: string): string | undefined => c.leaseOf(n)?.networks['dcos']?.subnet;

  // Formation: every agent leased, distinct subnets, every kernel routing to every other agent.
  t.ok(await c.runUntil(() => names.every((n) => subnetOf(n) !== undefined), 120_000), 'every agent got a lease');
  t.equal(new Set(names.map(subnetOf)).size, agents, 'distinct subnets');
  t.ok(await c.runUntil(() => c.missingRoutes(names, names).length === 0, 120_000), `full mesh of routes: missing ${c.missingRoutes(names, names).slice(0, 5).join(', ')}`);
  const formedAtMs = c.sim.nowMs();

  // Partition: m1, m2 and the first half of the agents | m3 and the second half.
  const half = Math.floor(agents / 2);
  const sideA = ['m1', 'm2', ...names.slice(0, half)];
  const sideB = ['m3', ...names.slice(half)];
  c.partition([sideA, sideB]);
  const late = `a${agents + 1}`;
  c.add(late);
  c.partition([[...sideA, late], sideB]);
  await c.run(30_000);
  t.same(c.missingRoutes(names, names), [], 'during the partition every agent keeps its routes to the other side (failed is not released)');
  t.ok(await c.runUntil(() => subnetOf(late) !== undefined, 60_000), 'the majority side keeps allocating: the late agent got a lease');
  t.ok(await c.runUntil(() => c.missingRoutes(names.slice(0, half), [late]).length === 0, 60_000), 'its side routes to it');
  t.same(c.missingRoutes(names.slice(half), [late]).length, agents - half, 'the other side cannot know it yet');

  // Healing: everyone routes to everyone, the late agent included.
  c.heal();
  const all = [...names, late];
  t.ok(await c.runUntil(() => c.missingRoutes(all, all).length === 0, 120_000), `full mesh after healing: missing ${c.missingRoutes(all, all).slice(0, 5).join(', ')}`);
  const healedAtMs = c.sim.nowMs();

  // Release: the last agent stops for good and is released; its route leaves every kernel.
  const gone = names[agents - 1] as string;
  const goneSubnet = subnetOf(gone) as string;
  c.crash(gone);
  await c.run(5_000);
  t.equal(await c.release(gone), true, 'released on the leader');
  const rest = all.filter((n) => n !== gone);
  t.ok(await c.runUntil(() => rest.every((n) => !c.routesOf(n).has(goneSubnet)), 60_000), `the released agent's route (${goneSubnet}) left every kernel`);
  t.same(c.missingRoutes(rest, rest), [], 'and every other route stays');
  const releasedAtMs = c.sim.nowMs();
  const outcome: Outcome = {
    formedAtMs,
    healedAtMs,
    releasedAtMs,
    subnets: Object.fromEntries(all.map((n) => [n, subnetOf(n)])),
    routes: Object.fromEntries(rest.map((n) => [n, [...c.routesOf(n)].sort()])),
  };
  await c.stop();
  return outcome;
}

t.test('50 agents through formation, partition, heal and release; every fake kernel checked', async (t) => {
  const first = await scenario(t, 1, 50);
  t.comment(`virtual ms: formed ${first.formedAtMs}, healed ${first.healedAtMs}, released ${first.releasedAtMs}`);
  const again = await scenario(t, 1, 50);
  t.same(again, first, 'the same seed gives the same run (times, subnets, every kernel route)');
});

t.test('an overlay configuration change reaches every agent: a new network gets subnets and routes everywhere', async (t) => {
  const c = new SimOverlayCluster({ seed: 7, leaseCheckIntervalMs: 5_000 });
  t.teardown(() => c.stop());
  const names = Array.from({ length: 8 }, (_, i) => `a${i + 1}`);
  for (const n of names) c.add(n);
  t.ok(await c.runUntil(() => c.missingRoutes(names, names).length === 0, 120_000), 'formed');
  const before = Object.fromEntries(names.map((n) => [n, c.leaseOf(n)?.networks['dcos']?.subnet]));
  await c.reconfigure({ ...DEFAULT_OVERLAY_CONFIG, networks: [...DEFAULT_OVERLAY_CONFIG.networks, { name: 'extra', subnet: '10.200.0.0/16', prefix: 24 }] });
  const extraOf = (n: string): string | undefined => c.leaseOf(n)?.networks['extra']?.subnet;
  t.ok(await c.runUntil(() => names.every((n) => extraOf(n) !== undefined), 120_000), 'every agent leased a subnet of the new network');
  t.equal(new Set(names.map(extraOf)).size, names.length, 'distinct');
  const missingExtra = (): string[] => names.flatMap((from) => names.filter((to) => to !== from && !c.routesOf(from).has(extraOf(to) as string)).map((to) => `${from} -> ${to}`));
  t.ok(await c.runUntil(() => missingExtra().length === 0, 120_000), `every kernel routes the new network to every other agent: missing ${missingExtra().slice(0, 5).join(', ')}`);
  t.same(Object.fromEntries(names.map((n) => [n, c.leaseOf(n)?.networks['dcos']?.subnet])), before, 'the existing subnets did not move');
  t.same(c.missingRoutes(names, names), [], 'and their routes stay');
});
