import t from 'tap';
import { bucketGrowth, bucketQuantile, type HistogramBucket, UiHub } from '../../../src/daemon/ui-hub.js';

const INF = Number.POSITIVE_INFINITY;
const buckets = (...pairs: [number, number][]): HistogramBucket[] => pairs.map(([le, count]) => ({ le, count }));

t.test('quantiles from cumulative buckets, as histogram_quantile computes them', async (t) => {
  t.equal(bucketQuantile(buckets([0.01, 0], [INF, 0]), 0.5), null, 'no observations');
  const h = buckets([0.01, 50], [0.1, 100], [INF, 100]);
  t.equal(bucketQuantile(h, 0.5), 0.01);
  t.equal(bucketQuantile(h, 0.25), 0.005, 'linear within the first bucket from 0');
  t.ok(Math.abs((bucketQuantile(h, 0.75) ?? 0) - 0.055) < 1e-12, 'linear within the second bucket');
  t.equal(bucketQuantile(buckets([0.01, 0], [0.1, 0], [INF, 4]), 0.99), 0.1, 'past the last bound: the last bound');
});

t.test('growth between two readings; a reset counts from zero', async (t) => {
  t.same(bucketGrowth(buckets([1, 2], [INF, 3]), buckets([1, 5], [INF, 7])), buckets([1, 3], [INF, 4]));
  t.same(bucketGrowth(buckets([1, 9], [INF, 9]), buckets([1, 1], [INF, 1])), buckets([1, 1], [INF, 1]), 'a restarted counter');
  t.same(bucketGrowth(undefined, buckets([1, 1], [INF, 2])), buckets([1, 1], [INF, 2]));
});

t.test('the hub ticks while pages are open, keeps the chart history bounded, and reports a failing state', async (t) => {
  let reading = buckets([0.01, 0], [0.1, 0], [INF, 0]);
  let fail = false;
  const hub = new UiHub({
    state: async () => {
      if (fail) throw new Error('no state');
      return { status: { name: 'n' } };
    },
    propagation: async () => reading,
    nowMs: () => 1000,
    historyPoints: 3,
    intervalMs: 60_000,
  });
  t.teardown(() => hub.stop());
  const seen: [string, unknown][] = [];
  const off = hub.subscribe((event, data) => seen.push([event, data]));
  await new Promise((r) => setImmediate(r));
  t.same(seen[0], ['state', { status: { name: 'n' }, propagation: [] }], 'a new page gets the state at once');
  await hub.tick(); // the first reading: the baseline
  reading = buckets([0.01, 10], [0.1, 20], [INF, 20]);
  await hub.tick();
  const last = seen.at(-1)?.[1] as { propagation: { deltas: number; p50Ms: number; p99Ms: number }[] };
  t.equal(last.propagation.length, 1);
  t.equal(last.propagation[0]?.deltas, 20);
  t.equal(last.propagation[0]?.p50Ms, 10);
  t.ok(Math.abs((last.propagation[0]?.p99Ms ?? 0) - 98.2) < 1e-9, `p99 ${last.propagation[0]?.p99Ms}`);
  for (let i = 0; i < 5; i++) await hub.tick();
  t.equal(((await hub.snapshot())['propagation'] as unknown[]).length, 3, 'history is bounded');
  fail = true;
  await hub.tick();
  t.same(seen.at(-1), ['problem', { message: 'no state' }]);
  t.equal(hub.failures, 1);
  off();
  const before = seen.length;
  await hub.tick();
  t.equal(seen.length, before, 'no page, nothing sent');
});
