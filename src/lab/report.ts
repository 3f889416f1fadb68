/**
 * The lab's report: what was played, every violation with its time, each event's convergence,
 * the figures per event kind (p50/p99 over repetitions), and the samples behind the charts. The
 * JSON is the record; `renderHtml` (html.ts) draws the same data.
 */
import type { Invariant, Violation } from './checks.js';
import type { Scenario } from './scenario.js';
import type { FaultWindow } from './world.js';

export interface LabEvent {
  kind: string;
  label: string;
  /** Milliseconds from the start of the run. */
  atMs: number;
  /** Until every running node's membership view agreed. */
  membersMs?: number;
  /** Until every running agent's kernel routes agreed. */
  kernelsMs?: number;
  /** Until a full ping round between agents' containers gave what the faults imply. */
  pingsMs?: number;
  /** Until every running agent's DNS server answered the event's task name (container events only). */
  namesMs?: number;
  /** The task name a container event started, with its address (the names measure waits for it). */
  name?: { fqdn: string; ip: string };
  /** No two running agents had containers to ping after this event: pings are not measured. */
  noPings?: boolean;
  /** Set once a missed settle was reported (internal; not serialised as meaningful). */
  settleReported?: boolean;
}

export interface LabSample {
  atMs: number;
  /** Per running node: membership view agrees. */
  members: Record<string, boolean>;
  /** Per running agent with a lease: kernel routes agree. */
  routes: Record<string, boolean>;
}

export interface LabReport {
  scenario: Scenario;
  startedAt: string;
  /** From the start to the last observation (the teardown after it excluded). */
  durationMs: number;
  /** Every invariant held (exit code 0). */
  ok: boolean;
  nodes: string[];
  containers: { agent: string; kind: 'cni' | 'docker'; task: string; ip: string }[];
  /** Violations per invariant. */
  invariants: Record<Invariant, number>;
  violations: Violation[];
  events: LabEvent[];
  steps: { atMs: number; repetition: number; index: number; text: string }[];
  faults: FaultWindow[];
  samples: LabSample[];
}

export type Measure = 'membersMs' | 'kernelsMs' | 'pingsMs' | 'namesMs';
export const MEASURES: readonly Measure[] = ['membersMs', 'kernelsMs', 'pingsMs', 'namesMs'];
export const MEASURE_NAMES: Record<Measure, string> = { membersMs: 'membership', kernelsMs: 'kernel routes', pingsMs: 'pings', namesMs: 'names' };

/** Whether an event is measured on `m`: pings need containers to ping, names a container event's name. */
export function measured(e: LabEvent, m: Measure): boolean {
  if (m === 'pingsMs') return e.noPings !== true;
  if (m === 'namesMs') return e.name !== undefined;
  return true;
}

export interface Distribution {
  n: number;
  /** Events of this kind that never converged on this measure. */
  missed: number;
  p50?: number;
  p99?: number;
  max?: number;
}

/** Nearest-rank quantile of sorted values. */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Convergence per event kind and measure. */
export function convergence(events: readonly LabEvent[]): Record<string, Record<Measure, Distribution>> {
  const out: Record<string, Record<Measure, Distribution>> = {};
  for (const kind of [...new Set(events.map((e) => e.kind))]) {
    const of = events.filter((e) => e.kind === kind);
    const row = {} as Record<Measure, Distribution>;
    for (const m of MEASURES) {
      const applicable = of.filter((e) => measured(e, m));
      const values = applicable.map((e) => e[m]).filter((v): v is number => v !== undefined);
      values.sort((a, b) => a - b);
      const p50 = quantile(values, 0.5);
      const p99 = quantile(values, 0.99);
      const max = values.at(-1);
      row[m] = { n: values.length, missed: applicable.length - values.length, ...(p50 === undefined ? {} : { p50 }), ...(p99 === undefined ? {} : { p99 }), ...(max === undefined ? {} : { max }) };
    }
    out[kind] = row;
  }
  return out;
}

/** The report as written to report.json: events without internal fields, with the convergence summary. */
export function reportJson(report: LabReport): unknown {
  return {
    ...report,
    events: report.events.map(({ settleReported: _, ...e }) => e),
    convergence: convergence(report.events),
  };
}

/** A few lines for the terminal. */
export function summaryText(report: LabReport): string {
  const lines = [`\n${report.scenario.name}: ${report.ok ? 'every invariant held' : `${report.violations.length} violations`} (${(report.durationMs / 1000).toFixed(1)} s)`];
  for (const [inv, n] of Object.entries(report.invariants)) lines.push(`  ${inv.padEnd(18)} ${n === 0 ? 'held' : `${n} violations`}`);
  lines.push('convergence (ms, p50 / p99 over events of each kind):');
  for (const [kind, row] of Object.entries(convergence(report.events))) {
    const cell = (d: Distribution): string => (d.n === 0 ? (d.missed === 0 ? 'n/a' : 'never') : `${d.p50} / ${d.p99}${d.missed > 0 ? ` (${d.missed} missed)` : ''}`);
    lines.push(`  ${kind.padEnd(10)} membership ${cell(row.membersMs).padEnd(16)} kernels ${cell(row.kernelsMs).padEnd(16)} pings ${cell(row.pingsMs).padEnd(16)} names ${cell(row.namesMs)}`);
  }
  return `${lines.join('\n')}\n`;
}
