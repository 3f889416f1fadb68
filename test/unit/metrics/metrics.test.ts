import t from 'tap';
import { DaemonMetrics, METRIC_CATALOG, renderExposition } from '../../../src/metrics/index.js';

t.test('stats become typed, described families: counters end in _total, milliseconds become seconds', async (t) => {
  const { text, undocumented } = renderExposition({
    dataplane: { applies: 3, converged: true, lastApplyMs: 250, totalApplyMs: 1500, ops: { 'route.replace': { ok: 2, failed: 1 } }, resyncReasons: { start: 1 } },
    overlay: { problems: { LASHUP_ERR_ROUTES_CONFLICT: 2 }, remoteAgents: 4 },
    libp2p: { inbound: { admitted: 7, pending: 1 } },
    members: { byState: { alive: 3, 'odd"state': 1 } },
    none: undefined,
  });
  t.same(undocumented, []);
  t.match(text, /^# HELP lashup_dataplane_applies_total Reconciler applies\.\n# TYPE lashup_dataplane_applies_total counter\nlashup_dataplane_applies_total 3$/m);
  t.match(text, /^# TYPE lashup_dataplane_converged gauge\nlashup_dataplane_converged 1$/m, 'a boolean is a 0/1 gauge');
  t.match(text, /^lashup_dataplane_last_apply_seconds 0\.25$/m, 'milliseconds exported as seconds');
  t.match(text, /^lashup_dataplane_apply_time_seconds_total 1\.5$/m);
  t.match(text, /^lashup_dataplane_ops_total\{op="route\.replace",result="ok"\} 2$/m);
  t.match(text, /^lashup_dataplane_ops_total\{op="route\.replace",result="failed"\} 1$/m);
  t.match(text, /^lashup_dataplane_resyncs_by_reason_total\{reason="start"\} 1$/m);
  t.match(text, /^# TYPE lashup_overlay_problems gauge\nlashup_overlay_problems\{code="LASHUP_ERR_ROUTES_CONFLICT"\} 2$/m);
  t.match(text, /^lashup_libp2p_inbound_admitted_total 7$/m, 'nested stats under their parent');
  t.match(text, /^lashup_libp2p_inbound_pending 1$/m);
  t.match(text, /^lashup_members\{state="odd\\"state"\} 1$/m, 'label values escaped');
  t.equal(text.match(/^# TYPE lashup_dataplane_ops_total /gm)?.length, 1, 'one TYPE line per family');
});

t.test('fields the catalog does not describe are reported, not exported', async (t) => {
  const { text, undocumented } = renderExposition({ kv: { localUpdates: 1, brandNewCounter: 5 }, mystery: { x: 1 } });
  t.same(undocumented, ['kv.brandNewCounter', 'mystery.x']);
  t.notMatch(text, /brand_new|mystery/);
  t.match(text, /^lashup_kv_local_updates_total 1$/m);
});

t.test('every catalog entry has help text; names are valid Prometheus names', async (t) => {
  const problems: string[] = [];
  const visit = (path: string, specs: Record<string, unknown>): void => {
    for (const [field, spec] of Object.entries(specs)) {
      const s = spec as { nested?: Record<string, unknown>; help?: string; name?: string };
      if (s.nested !== undefined) visit(`${path}.${field}`, s.nested);
      else if (typeof s.help !== 'string' || s.help.length < 10 || !s.help.endsWith('.')) problems.push(`${path}.${field}: help`);
      else if (s.name !== undefined && !/^[a-z0-9_]*$/.test(s.name)) problems.push(`${path}.${field}: name`);
    }
  };
  for (const [component, specs] of Object.entries(METRIC_CATALOG)) visit(component, specs);
  t.same(problems, []);
});

t.test('the registry adds process metrics and the histograms the components feed', async (t) => {
  const metrics = new DaemonMetrics();
  metrics.dataplaneApplySeconds.observe(0.003);
  metrics.kvPropagationSeconds.observe(0.02);
  const text = await metrics.render({ api: { requests: 1, clientErrors: 0, serverErrors: 0, watchers: 0 } });
  t.match(text, /^lashup_api_requests_total 1$/m);
  t.match(text, /^# TYPE lashup_dataplane_apply_duration_seconds histogram$/m);
  t.match(text, /^lashup_dataplane_apply_duration_seconds_bucket\{le="0\.005"\} 1$/m);
  t.match(text, /^lashup_kv_propagation_delay_seconds_count 1$/m);
  t.match(text, /^process_cpu_seconds_total /m);
  t.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
  t.same(metrics.undocumented, []);
  // Prometheus reserves `_total` for counters (`promtool check metrics` flags gauges named so);
  // prom-client's nodejs_active_*_total gauges are left out for that.
  const gaugesNamedTotal = [...text.matchAll(/^# TYPE (\S+_total) (\S+)$/gm)].filter((m) => m[2] !== 'counter').map((m) => m[1]);
  t.same(gaugesNamedTotal, [], 'no non-counter family ends in _total');
  t.match(text, /^# TYPE nodejs_active_handles gauge$/m, 'the unsuffixed twin stays');
});
