import t from 'tap';
import { convergence, INVARIANTS, type LabReport, quantile, renderHtml, reportJson, summaryText, validateScenario } from '../../../src/lab/index.js';

function report(): LabReport {
  return {
    scenario: validateScenario({ name: 'r', description: 'a <b>bold</b> claim', agents: 2, steps: [{ do: 'settle' }] }),
    startedAt: '2026-12-04T00:00:00.000Z',
    durationMs: 30_000,
    ok: false,
    nodes: ['m1', 'm2', 'm3', 'a4', 'a5'],
    containers: [
      { agent: 'a4', kind: 'cni', task: 'a4-c1', ip: '9.0.1.2' },
      { agent: 'a4', kind: 'docker', task: 'a4-docker', ip: '9.0.1.130' },
    ],
    invariants: { ...(Object.fromEntries(INVARIANTS.map((i) => [i, 0])) as LabReport['invariants']), reachability: 1 },
    violations: [{ atMs: 12_000, invariant: 'reachability', message: 'a4 did not reach a5 <x>' }],
    events: [
      { kind: 'form', label: 'the cluster starts', atMs: 0, membersMs: 4000, kernelsMs: 5000, noPings: true },
      { kind: 'kill', label: 'kill a5', atMs: 10_000, membersMs: 2000, kernelsMs: 100, pingsMs: 300 },
      { kind: 'kill', label: 'kill a4', atMs: 20_000, membersMs: 3000, kernelsMs: 200, settleReported: true },
      { kind: 'container', label: 'container a4-c2 on a4', atMs: 25_000, membersMs: 100, kernelsMs: 100, pingsMs: 90, namesMs: 400, name: { fqdn: 'a4-c2.lab.containerip.x', ip: '9.0.1.3' } },
    ],
    steps: [{ atMs: 10_000, repetition: 1, index: 0, text: 'kill a5' }],
    faults: [
      { kind: 'down', label: 'a5 killed', fromMs: 10_000, toMs: 15_000 },
      { kind: 'partition', label: 'a4 | a5', fromMs: 16_000 },
    ],
    samples: [
      { atMs: 1000, members: { m1: false, a4: true }, routes: { a4: false } },
      { atMs: 2000, members: { m1: true, a4: true }, routes: { a4: true } },
      { atMs: 3000, members: {}, routes: {} },
    ],
  };
}

t.test('quantiles are nearest-rank', async (t) => {
  t.equal(quantile([], 0.5), undefined);
  t.equal(quantile([1, 2, 3, 4], 0.5), 2);
  t.equal(quantile([1, 2, 3, 4], 0.99), 4);
  t.equal(quantile([7], 0), 7);
});

t.test('convergence per kind counts the missed and leaves unmeasured pings out', async (t) => {
  const c = convergence(report().events);
  t.same(c['kill']?.membersMs, { n: 2, missed: 0, p50: 2000, p99: 3000, max: 3000 });
  t.same(c['kill']?.pingsMs, { n: 1, missed: 1, p50: 300, p99: 300, max: 300 });
  t.same(c['form']?.pingsMs, { n: 0, missed: 0 }, 'not measured is not missed');
  t.same(c['kill']?.namesMs, { n: 0, missed: 0 }, 'names are measured for container events only');
  t.same(c['container']?.namesMs, { n: 1, missed: 0, p50: 400, p99: 400, max: 400 });
  const text = summaryText(report());
  t.match(text, /r: 1 violations/);
  t.match(text, /reachability\s+1 violations/);
  t.match(text, /form\s+membership 4000 \/ 4000\s+kernels 5000 \/ 5000\s+pings n\/a\s+names n\/a/);
  t.match(text, /kill .* pings 300 \/ 300 \(1 missed\)/);
  const json = reportJson(report()) as { events: object[]; convergence: object };
  t.notOk(JSON.stringify(json.events).includes('settleReported'));
  t.ok(json.convergence);
});

t.test('the HTML is self-contained, escapes text and draws every series', async (t) => {
  const html = renderHtml(report());
  t.notMatch(html, /<script|<link|@import|url\(|https?:\/\/(?!json-schema)/, 'no scripts, no remote resources');
  t.match(html, 'a &#60;b&#62;bold&#60;/b&#62; claim');
  t.match(html, '2 containers (1 of them Docker)');
  t.match(html, 'a4 did not reach a5 &#60;x&#62;');
  t.match(html, /id="verdict"><strong>1 violation\.<\/strong>/);
  for (const series of ['members', 'routes', 'fault-down', 'fault-partition', 'event', 'lane-a4-routes', 'conv-kill-membersMs', 'conv-kill-pingsMs-missed'])
    t.match(html, `data-series="${series}"`, series);
  t.match(html, /<polyline data-series="members" [^>]*points="[\d., ]+\d"/, 'a line with points');
  t.match(html, /<td>form<\/td><td class="num">4000 \/ 4000<\/td><td class="num">5000 \/ 5000<\/td><td class="num">n\/a<\/td><td class="num">n\/a<\/td><\/tr>/);
  t.match(html, 'data-series="conv-container-namesMs"');
  t.notMatch(html, 'data-series="conv-kill-namesMs', 'no dot or miss mark where a measure does not apply');
  const ok = renderHtml({ ...report(), ok: true, violations: [], events: [] });
  t.match(ok, 'Every invariant held.');
  t.match(ok, 'No events.');
});
