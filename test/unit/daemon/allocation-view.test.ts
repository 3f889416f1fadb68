import t from 'tap';
import { AllocationView } from '../../../src/daemon/allocation-view.js';
import type { Lease } from '../../../src/ipam/index.js';
import { Scheduler } from '../../../src/sim/index.js';
import { MemoryFs } from '../../../src/testing/index.js';

const lease = (agent: string, n: number): Lease => ({ agent, vtepIp: `44.128.0.${n}`, vtepMac: `70:b3:d5:80:00:0${n}`, networks: { dcos: { subnet: `9.0.${n}.0/24` } } }) as unknown as Lease;

function setup(answers: (Lease[] | undefined)[]) {
  const scheduler = new Scheduler({ epochMs: 0 });
  const fs = new MemoryFs();
  let fetches = 0;
  const make = () =>
    new AllocationView({
      path: 'data/allocations.json',
      fs,
      clock: scheduler.clock(),
      fetch: (callback) => {
        const answer = answers[Math.min(fetches++, answers.length - 1)];
        scheduler.clock().setTimer(5, () => (answer === undefined ? callback(undefined, 'no master') : callback(answer)));
      },
      underlay: (agent) => (agent === 'a1' ? '192.0.2.11' : undefined),
      refreshIntervalMs: 30_000,
      minRefreshMs: 1000,
    });
  return { scheduler, fs, make, fetches: () => fetches };
}

t.test('fetched at start and periodically; kept on disk for a restart without masters', async (t) => {
  const s = setup([[lease('a1', 1)], [lease('a1', 1), lease('a2', 2)], undefined]);
  const view = s.make();
  let changes = 0;
  view.onChange(() => changes++);
  view.start();
  s.scheduler.runFor(10);
  t.same(view.allocation('a1')?.vtepIp, '44.128.0.1');
  t.equal(view.allocation('a2'), undefined);
  t.equal(view.underlay('a1'), '192.0.2.11');
  s.scheduler.runFor(30_000);
  t.equal(view.allocation('a2')?.vtepIp, '44.128.0.2', 'the periodic refresh brought a2');
  t.equal(changes, 2);
  s.scheduler.runFor(30_000);
  t.equal(view.stats.refreshFailures, 1, 'a failed fetch is counted');
  t.equal(view.allocation('a2')?.vtepIp, '44.128.0.2', 'and the last known allocations stay');
  view.stop();
  const restarted = s.make();
  t.equal(restarted.allocation('a2')?.vtepIp, '44.128.0.2', 'read back from disk, before any master answers');
  t.equal(restarted.stats.allocations, 2);
});

t.test('refreshes asked for by unknown entries: at most one per minRefreshMs, none while one is in flight', async (t) => {
  const s = setup([[lease('a1', 1)]]);
  const view = s.make();
  view.start();
  s.scheduler.runFor(10);
  t.equal(s.fetches(), 1);
  for (let i = 0; i < 10; i++) view.refresh();
  s.scheduler.runFor(500);
  t.equal(s.fetches(), 1, 'not before minRefreshMs since the last fetch');
  s.scheduler.runFor(600);
  t.equal(s.fetches(), 2, 'then one fetch for all ten asks');
  let changes = 0;
  view.onChange(() => changes++);
  view.refresh();
  s.scheduler.runFor(2000);
  t.equal(changes, 0, 'the same allocations again: no change event');
  view.stop();
  view.refresh();
  s.scheduler.runFor(5000);
  t.equal(s.fetches(), 3, 'stopped: nothing more');
});

t.test('an unreadable saved file is ignored', async (t) => {
  const s = setup([[lease('a1', 1)]]);
  s.fs.write('data/allocations.json', new TextEncoder().encode('{nope'));
  const view = s.make();
  t.equal(view.allocation('a1'), undefined);
  view.start();
  s.scheduler.runFor(10);
  t.equal(view.allocation('a1')?.vtepIp, '44.128.0.1');
  view.stop();
});
