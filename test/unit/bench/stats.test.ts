import t from 'tap';
import { quantile, summarize, round } from '../../../bench/lib/stats.js';
import { renderTable, report } from '../../../bench/lib/report.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

t.test('quantiles interpolate between order statistics', async (t) => {
  t.ok(Number.isNaN(quantile([], 0.5)));
  t.equal(quantile([5], 0.99), 5);
  t.equal(quantile([4, 1, 3, 2], 0.5), 2.5);
  t.equal(quantile([1, 2, 3, 4, 5], 1), 5);
  t.equal(quantile([1, 2, 3, 4, 5], 0), 1);
  t.equal(quantile([0, 100], 0.99), 99);
  const d = summarize([3, 1, 2]);
  t.same({ n: d.n, min: d.min, p50: d.p50, max: d.max, mean: d.mean }, { n: 3, min: 1, p50: 2, max: 3, mean: 2 });
  t.ok(Number.isNaN(summarize([]).mean));
  t.equal(round(1234.567), 1235);
  t.equal(round(1.23456), 1.23);
  t.equal(round(Infinity), Infinity);
});

t.test('tables align columns; reports print targets and write JSON', async (t) => {
  t.equal(renderTable([]), '(no rows)');
  const table = renderTable([
    { n: 1000, rate: 1.5, ok: true },
    { n: 10, rate: null, ok: false },
  ]);
  t.equal(table.split('\n').length, 4);
  t.match(table, /1,000/);
  const dir = mkdtempSync(join(tmpdir(), 'lashup-bench-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const text = report(
    'demo',
    'a demo',
    {
      parameters: { n: 3 },
      rows: [{ a: 1 }],
      targets: [
        { name: 'speed', target: '>= 2', measured: '3', met: true },
        { name: 'size', target: '<= 1', measured: '4', met: false },
      ],
      notes: ['baseline measured in the same run'],
    },
    dir,
  );
  t.match(text, /\[met\] speed/);
  t.match(text, /\[MISSED\] size/);
  t.match(text, /note: baseline/);
  const json = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as Record<string, unknown>;
  t.match(json, { name: 'demo', parameters: { n: 3 }, machine: { node: process.version } });
  t.ok(typeof json['date'] === 'string');
});
