/**
 * The shipped Prometheus alerting rules (packaging/prometheus/lashup-alerts.yml) under
 * `promtool test rules`: every alert has a case where it fires and one where it stays quiet, so
 * a rule that can never fire (a misspelt metric name) or always fires fails here. The metric
 * names the rules use are checked against the catalog the daemon exports.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { METRIC_CATALOG } from '../../../src/metrics/catalog.js';
import { run } from '../../helpers/netns.js';

const PROMTOOL = '/usr/bin/promtool';
const RULES = resolve('packaging/prometheus/lashup-alerts.yml');
const required = process.env['CI'] === 'true';
if (!existsSync(PROMTOOL) && required) throw new Error(`${PROMTOOL} is missing (Debian package prometheus); required because CI=true`);
const skip = existsSync(PROMTOOL) ? false : `${PROMTOOL} is missing (Debian package prometheus)`;

async function promtool(args: string[]): Promise<{ code: number; out: string }> {
  const result = await run([PROMTOOL, ...args], 60_000);
  return { code: result.code, out: `${result.stdout}${result.stderr}` };
}

interface Case {
  /** Series as promtool writes them: `metric{labels}` and a values expression ("1+0x20"). */
  series: Record<string, string>;
  evalTime: string;
  /** The alert's expected instances: their labels beyond the rule's own (empty: it must not fire). */
  fires: Record<string, string>[];
  /** The alert's `$value` when it fires (default "1"). */
  value?: string;
}

const I = 'instance="n1:62080", job="lashup"';
const at = (labels: string) => ({
  instance: 'n1:62080',
  job: 'lashup',
  ...Object.fromEntries(
    labels
      .split(',')
      .filter(Boolean)
      .map((kv) => kv.split('=') as [string, string]),
  ),
});

/** Two cases (or more) per alert: the first fires, a later one does not. */
const CASES: Record<string, Case[]> = {
  LashupMemberFailed: [
    { series: { [`lashup_members{state="dead", ${I}}`]: '1x10' }, evalTime: '5m', fires: [at('state=dead')] },
    // Declared failed, back within a minute (a restart): no page.
    { series: { [`lashup_members{state="dead", ${I}}`]: '1 1 0x10' }, evalTime: '5m', fires: [] },
  ],
  LashupMemberSuspect: [
    { series: { [`lashup_members{state="suspect", ${I}}`]: '1x10' }, evalTime: '8m', fires: [at('state=suspect')] },
    { series: { [`lashup_members{state="suspect", ${I}}`]: '1 0 1 0 1 0 1 0 1 0' }, evalTime: '8m', fires: [] },
  ],
  LashupAgentWithoutLease: [
    { series: { [`lashup_lease_held{${I}}`]: '0x5' }, evalTime: '4m', fires: [at('')] },
    { series: { [`lashup_lease_held{${I}}`]: '0 1x5' }, evalTime: '4m', fires: [] },
  ],
  LashupDataplaneNotConverged: [
    { series: { [`lashup_dataplane_converged{${I}}`]: '0x15' }, evalTime: '12m', fires: [at('')] },
    { series: { [`lashup_dataplane_converged{${I}}`]: '0 0 0 1x12' }, evalTime: '12m', fires: [] },
  ],
  LashupStoreJournalFailing: [
    { series: { [`lashup_kv_journal_write_errors_total{${I}}`]: '0+1x20' }, evalTime: '12m', fires: [at('')], value: '10' },
    // One failed write, retried and gone: no alert.
    { series: { [`lashup_kv_journal_write_errors_total{${I}}`]: '0 1x20' }, evalTime: '12m', fires: [] },
  ],
  LashupDataplaneApplyFailures: [
    { series: { [`lashup_dataplane_failed_applies_total{${I}}`]: '0+1x10', [`lashup_dataplane_converged{${I}}`]: '0x10' }, evalTime: '8m', fires: [at('')] },
    // Failures that the next apply corrected: converged again.
    { series: { [`lashup_dataplane_failed_applies_total{${I}}`]: '0+1x10', [`lashup_dataplane_converged{${I}}`]: '1x10' }, evalTime: '8m', fires: [] },
  ],
  LashupRouteConflicts: [
    { series: { [`lashup_dataplane_conflicts{${I}}`]: '2x10' }, evalTime: '7m', fires: [at('')], value: '2' },
    { series: { [`lashup_dataplane_conflicts{${I}}`]: '0x10' }, evalTime: '7m', fires: [] },
  ],
  LashupUntrustedEntries: [
    { series: { [`lashup_overlay_untrusted{${I}}`]: '1x10' }, evalTime: '7m', fires: [at('')] },
    { series: { [`lashup_overlay_untrusted{${I}}`]: '0x10', [`lashup_row_admission_refused_total{reason="forged", ${I}}`]: '0x10' }, evalTime: '7m', fires: [] },
    { series: { [`lashup_overlay_untrusted{${I}}`]: '0x10', [`lashup_row_admission_refused_total{reason="forged", ${I}}`]: '0+2x10' }, evalTime: '7m', fires: [at('reason=forged')] },
  ],
  LashupMasterIdentityMismatch: [
    { series: { [`lashup_master_identities_mismatches_total{${I}}`]: '0 0 1 1 1' }, evalTime: '4m', fires: [at('')] },
    { series: { [`lashup_master_identities_mismatches_total{${I}}`]: '3x5' }, evalTime: '4m', fires: [] },
  ],
  LashupBlocksNearlyExhausted: [
    {
      series: { [`lashup_usage_blocks_used{network="dcos", family="4", ${I}}`]: '250x15', [`lashup_usage_blocks_capacity{network="dcos", family="4", ${I}}`]: '256x15' },
      evalTime: '12m',
      fires: [at('network=dcos,family=4')],
    },
    { series: { [`lashup_usage_blocks_used{network="dcos", family="4", ${I}}`]: '20x15', [`lashup_usage_blocks_capacity{network="dcos", family="4", ${I}}`]: '256x15' }, evalTime: '12m', fires: [] },
  ],
  LashupContainerAddressesNearlyExhausted: [
    {
      series: { [`lashup_usage_addresses_used{network="dcos", kind="cni", ${I}}`]: '120x15', [`lashup_usage_addresses_capacity{network="dcos", kind="cni", ${I}}`]: '126x15' },
      evalTime: '12m',
      fires: [at('network=dcos,kind=cni')],
    },
    {
      series: { [`lashup_usage_addresses_used{network="dcos", kind="cni", ${I}}`]: '3x15', [`lashup_usage_addresses_capacity{network="dcos", kind="cni", ${I}}`]: '126x15' },
      evalTime: '12m',
      fires: [],
    },
  ],
  LashupContainerAddressesExhausted: [
    { series: { [`lashup_cni_exhausted_total{${I}}`]: '0 0 4 4 4' }, evalTime: '4m', fires: [at('')] },
    { series: { [`lashup_cni_exhausted_total{${I}}`]: '0x5' }, evalTime: '4m', fires: [] },
  ],
  LashupAntiEntropyFailing: [
    { series: { [`lashup_anti_entropy_rounds_started_total{${I}}`]: '0+6x30', [`lashup_anti_entropy_rounds_failed_total{${I}}`]: '0+5x30' }, evalTime: '25m', fires: [at('')] },
    // One round in six failing (a peer restarting): no alert.
    { series: { [`lashup_anti_entropy_rounds_started_total{${I}}`]: '0+6x30', [`lashup_anti_entropy_rounds_failed_total{${I}}`]: '0+1x30' }, evalTime: '25m', fires: [] },
  ],
  LashupRaftWithoutLeader: [
    { series: { [`lashup_raft_leader_known{${I}}`]: '0x5' }, evalTime: '3m', fires: [at('')] },
    // An election takes a second or two; a scrape may see it.
    { series: { [`lashup_raft_leader_known{${I}}`]: '1 0 1x5' }, evalTime: '3m', fires: [] },
  ],
  LashupNoRaftLeaderAnywhere: [
    { series: { 'lashup_raft_leader{instance="m1:62080", job="lashup"}': '0x5', 'lashup_raft_leader{instance="m2:62080", job="lashup"}': '0x5' }, evalTime: '3m', fires: [{}] },
    { series: { 'lashup_raft_leader{instance="m1:62080", job="lashup"}': '0x5', 'lashup_raft_leader{instance="m2:62080", job="lashup"}': '1x5' }, evalTime: '3m', fires: [] },
  ],
  LashupStorePropagationSlow: [
    {
      series: {
        [`lashup_kv_propagation_delay_seconds_bucket{le="1", ${I}}`]: '0+0x30',
        [`lashup_kv_propagation_delay_seconds_bucket{le="10", ${I}}`]: '0+10x30',
        [`lashup_kv_propagation_delay_seconds_bucket{le="+Inf", ${I}}`]: '0+10x30',
      },
      evalTime: '25m',
      // Summed by instance: the job label is gone.
      fires: [{ instance: 'n1:62080' }],
    },
    {
      series: {
        [`lashup_kv_propagation_delay_seconds_bucket{le="1", ${I}}`]: '0+10x30',
        [`lashup_kv_propagation_delay_seconds_bucket{le="10", ${I}}`]: '0+10x30',
        [`lashup_kv_propagation_delay_seconds_bucket{le="+Inf", ${I}}`]: '0+10x30',
      },
      evalTime: '25m',
      fires: [],
    },
  ],
};

const rulesText = readFileSync(RULES, 'utf8');
interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (parse(rulesText) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const alerts = rules.map((r) => r.alert);
const byName = new Map(rules.map((r) => [r.alert, r]));

/** The annotations as Prometheus renders them: the rules use `$labels.NAME` and `$value` only. */
function render(text: string, labels: Record<string, string>, value: string): string {
  return text.replace(/\{\{\s*\$(labels\.(\w+)|value)\s*\}\}/g, (_all, _what, label: string | undefined) => (label === undefined ? value : (labels[label] ?? '')));
}

t.test('every shipped alert has a firing and a quiet case', async (t) => {
  t.ok(alerts.length >= 10, `alerts found: ${alerts.join(', ')}`);
  t.same(Object.keys(CASES).sort(), [...alerts].sort(), 'the cases cover exactly the shipped alerts');
  for (const [alert, cases] of Object.entries(CASES)) {
    t.ok(
      cases.some((c) => c.fires.length > 0),
      `${alert} fires in some case`,
    );
    t.ok(
      cases.some((c) => c.fires.length === 0),
      `${alert} stays quiet in some case`,
    );
    t.ok(byName.get(alert)?.labels?.['severity'] !== undefined, `${alert} has a severity label`);
    t.ok(byName.get(alert)?.annotations?.['summary'] !== undefined, `${alert} has a summary`);
  }
});

t.test('the metric names the rules use exist in the exported catalog', async (t) => {
  const used = new Set([...rulesText.matchAll(/\b(lashup_[a-z0-9_]+)/g)].map((m) => (m[1] as string).replace(/_bucket$/, '')));
  const exported = new Set<string>(['lashup_kv_propagation_delay_seconds', 'lashup_dataplane_apply_duration_seconds']);
  const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  const walk = (prefix: string, spec: Record<string, unknown>) => {
    for (const [field, s] of Object.entries(spec)) {
      const f = s as { nested?: Record<string, unknown>; kind?: string; name?: string; ms?: boolean };
      if (f.nested !== undefined) {
        walk(`${prefix}_${snake(field)}`, f.nested);
        continue;
      }
      let base = f.name ?? snake(field);
      if (f.ms === true) base = base.replace(/_ms$/, '_seconds');
      const name = base === '' ? prefix : `${prefix}_${base}`;
      exported.add(f.kind === 'counter' && !name.endsWith('_total') ? `${name}_total` : name);
    }
  };
  for (const [component, spec] of Object.entries(METRIC_CATALOG)) walk(`lashup_${snake(component)}`, spec as Record<string, unknown>);
  for (const name of used) t.ok(exported.has(name), `${name} is a metric lashup exports`);
});

t.test('promtool: the rules load and every case passes', { skip }, async (t) => {
  const check = await promtool(['check', 'rules', RULES]);
  t.equal(check.code, 0, check.out);
  const dir = mkdtempSync(join(tmpdir(), 'lashup-alerts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tests = Object.entries(CASES).flatMap(([alert, cases]) =>
    cases.map((c) => ({
      interval: '1m',
      input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
      alert_rule_test: [
        {
          eval_time: c.evalTime,
          alertname: alert,
          exp_alerts: c.fires.map((labels) => {
            const rule = byName.get(alert) as Rule;
            const all = { ...labels, ...rule.labels };
            const annotations = Object.fromEntries(Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, render(v, all, c.value ?? '1')]));
            return { exp_labels: all, exp_annotations: annotations };
          }),
        },
      ],
    })),
  );
  // JSON is YAML: promtool reads the generated file as is.
  const file = join(dir, 'tests.yml');
  writeFileSync(file, JSON.stringify({ rule_files: [RULES], evaluation_interval: '1m', tests }, null, 2));
  const result = await promtool(['test', 'rules', file]);
  t.equal(result.code, 0, result.out.slice(-4000));
  t.match(result.out, /SUCCESS/);
});
