import t from 'tap';
import { FAULT_TABLE, faultScript, World } from '../../../src/lab/index.js';

const ips: Record<string, string> = { m1: '192.0.2.1', m2: '192.0.2.2', m3: '192.0.2.3', a4: '192.0.2.4', a5: '192.0.2.5' };
const ipOf = (n: string): string => ips[n] as string;
const world = (): World => new World(['m1', 'm2', 'm3'], ['a4', 'a5']);

t.test('a two-way partition cuts every pair across groups, and heal restores them', async (t) => {
  const w = world();
  w.partition(
    [
      ['m1', 'a4'],
      ['m2', 'a5'],
    ],
    false,
    100,
  );
  t.ok(w.cut('m1', 'm2') && w.cut('a4', 'a5') && w.cut('a5', 'm1'));
  t.ok(w.clear('m1', 'a4'), 'same group');
  t.ok(w.clear('m3', 'a4'), 'a node in no group is not affected');
  t.equal(w.lastFaultAtMs('a4', 'a5'), 100);
  t.equal(w.lastFaultAtMs('m3', 'a4'), 0);
  w.heal(300);
  t.ok(w.clear('a4', 'a5'));
  t.equal(w.lastFaultAtMs('a5', 'a4'), 300, 'the end of a fault counts too');
  t.same(w.windows, [{ kind: 'partition', label: 'm1,a4 | m2,a5', fromMs: 100, toMs: 300 }]);
});

t.test('a one-way partition drops only from the first group', async (t) => {
  const w = world();
  w.partition([['a4'], ['a5', 'm1']], true, 0);
  t.ok(w.dropped('a4', 'a5') && w.dropped('a4', 'm1'));
  t.notOk(w.dropped('a5', 'a4'));
  t.notOk(w.cut('a4', 'a5'), 'one way is not a cut');
  t.notOk(w.clear('a4', 'a5'));
  const script = faultScript(w, 'a4', ipOf);
  t.match(script, 'ip daddr 192.0.2.5 drop');
  t.notMatch(script, 'ip saddr', 'nothing dropped on the way in');
  t.match(faultScript(w, 'a5', ipOf), 'ip saddr 192.0.2.4 drop', 'the receiver drops it on input too');
  t.notMatch(faultScript(w, 'a5', ipOf), 'ip daddr');
});

t.test('a new partition replaces the old one', async (t) => {
  const w = world();
  w.partition([['a4'], ['a5']], false, 0);
  w.partition([['m1'], ['m2']], false, 50);
  t.ok(w.clear('a4', 'a5'));
  t.ok(w.cut('m1', 'm2'));
  t.equal(w.windows[0]?.toMs, 50, 'the first window ends');
});

t.test('loss is per link, both ways, and 0 removes it', async (t) => {
  const w = world();
  w.setLoss('a4', 'a5', 10, 10);
  t.equal(w.lossPercent('a5', 'a4'), 10);
  t.notOk(w.clear('a4', 'a5'));
  t.match(faultScript(w, 'a5', ipOf), 'ip daddr 192.0.2.4 numgen random mod 100 < 10 drop');
  w.setLoss('a4', 'a5', 30, 20);
  t.equal(w.windows.filter((x) => x.toMs === undefined).length, 1, 'one open window per link');
  w.setLoss('a5', 'a4', 0, 40);
  t.ok(w.clear('a4', 'a5'));
  t.same(
    w.windows.map((x) => [x.label, x.fromMs, x.toMs]),
    [
      ['a4 ~ a5 10% loss', 10, 20],
      ['a4 ~ a5 30% loss', 20, 40],
    ],
  );
});

t.test('the fault script replaces the lab table atomically and has no rule without faults', async (t) => {
  const script = faultScript(world(), 'm1', ipOf);
  const lines = script.split('\n');
  t.same(lines.slice(0, 3), [`table inet ${FAULT_TABLE}`, `delete table inet ${FAULT_TABLE}`, `table inet ${FAULT_TABLE} {`]);
  t.notMatch(script, /drop/);
});

t.test('nodes: starts, stops and releases, with down windows only after a first start', async (t) => {
  const w = world();
  w.stopped('a5', 5, 'killed');
  t.equal(w.windows.length, 1);
  w.started('a4', 0);
  w.stopped('a4', 10, 'killed');
  w.stopped('a4', 12, 'stopped');
  t.equal(w.windows.filter((x) => x.label.startsWith('a4')).length, 1, 'one window while down');
  w.released('a4');
  t.ok(w.node('a4').released);
  w.started('a4', 20);
  t.same([w.node('a4').running, w.node('a4').released, w.node('a4').changedAtMs], [true, false, 20]);
  t.same(
    w.windows.find((x) => x.label === 'a4 killed'),
    { kind: 'down', label: 'a4 killed', fromMs: 10, toMs: 20 },
  );
  t.throws(() => w.node('a9'), RangeError);
  t.same(
    w.agents.map((a) => a.name),
    ['a4', 'a5'],
  );
});
