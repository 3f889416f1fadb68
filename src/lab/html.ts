/**
 * The lab report as one self-contained HTML file: inline CSS and SVG, no scripts, fonts or
 * remote resources, so it opens offline and can be attached to a ticket. Charts:
 *
 * - timeline: the share of running nodes whose membership view agrees, and of running agents
 *   whose kernel routes agree, over time (series `members` and `routes`), fault windows shaded,
 *   events as vertical lines; under it one lane per node (agreeing, disagreeing, not running);
 * - convergence: per event kind, one dot per event and measure (membership, kernel routes,
 *   pings), with p50 and p99 marks.
 *
 * Every chart element carries `data-series` so tests (and people) can find the series.
 */
import { convergence, MEASURE_NAMES, MEASURES, measured, type LabReport } from './report.js';

const esc = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (n: number): string => (Math.round(n * 10) / 10).toString();
const COLORS: Record<string, string> = { members: '#2b6cb0', routes: '#2f855a', membersMs: '#2b6cb0', kernelsMs: '#2f855a', pingsMs: '#b7791f', namesMs: '#805ad5' };
const FAULT_COLORS: Record<string, string> = { partition: '#fed7d7', loss: '#feebc8', down: '#e2e8f0' };

export function renderHtml(report: LabReport): string {
  const s = report.scenario;
  const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>lashup lab: ${esc(s.name)}</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1a202c;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.ok{color:#276749}.bad{color:#c53030}table{border-collapse:collapse}td,th{border-bottom:1px solid #e2e8f0;padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}svg text{font:11px system-ui,sans-serif;fill:#4a5568}
.legend span{display:inline-block;margin-right:16px}.swatch{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px}
</style></head><body>`;
  const verdict = report.ok
    ? `<p class="ok" id="verdict"><strong>Every invariant held.</strong></p>`
    : `<p class="bad" id="verdict"><strong>${report.violations.length} violation${report.violations.length === 1 ? '' : 's'}.</strong></p>`;
  const intro = `<h1>lashup lab: ${esc(s.name)}</h1><p>${esc(s.description)}</p><p>Started ${esc(report.startedAt)}, ran ${fmt(report.durationMs / 1000)} s: 3 masters, ${
    report.nodes.length - 3
  } agents, ${report.containers.length} containers (${report.containers.filter((c) => c.kind === 'docker').length} of them Docker); ${s.steps.length} steps × ${s.repeat}.</p>${verdict}`;
  const invariants = `<h2>Invariants</h2><table id="invariants"><tr><th>invariant</th><th>violations</th></tr>${Object.entries(report.invariants)
    .map(([k, n]) => `<tr><td>${esc(k)}</td><td class="num ${n === 0 ? 'ok' : 'bad'}">${n}</td></tr>`)
    .join('')}</table>`;
  const violations =
    report.violations.length === 0
      ? ''
      : `<h2>Violations</h2><table id="violations"><tr><th>time</th><th>invariant</th><th>what</th></tr>${report.violations
          .map((v) => `<tr><td class="num">${fmt(v.atMs / 1000)} s</td><td>${esc(v.invariant)}</td><td>${esc(v.message)}</td></tr>`)
          .join('')}</table>`;
  return `${head}${intro}${invariants}${violations}<h2>Timeline</h2>${timeline(report)}<h2>Convergence per event kind</h2>${convergenceChart(report)}${eventTable(report)}${stepTable(report)}</body></html>\n`;
}

function timeline(report: LabReport): string {
  const W = 1000;
  const left = 60;
  const plotW = W - left - 20;
  const top = 10;
  const plotH = 160;
  const end = Math.max(report.durationMs, 1);
  const x = (ms: number): number => left + (ms / end) * plotW;
  const y = (share: number): number => top + (1 - share) * plotH;
  const parts: string[] = [];
  for (const f of report.faults) {
    const x0 = x(f.fromMs);
    const x1 = x(f.toMs ?? end);
    parts.push(
      `<rect data-series="fault-${f.kind}" x="${fmt(x0)}" y="${top}" width="${fmt(Math.max(1, x1 - x0))}" height="${plotH}" fill="${FAULT_COLORS[f.kind] ?? '#eee'}"><title>${esc(f.label)}</title></rect>`,
    );
  }
  for (let i = 0; i <= 4; i++) {
    const share = i / 4;
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${fmt(y(share))}" y2="${fmt(y(share))}" stroke="#edf2f7"/><text x="${left - 6}" y="${fmt(y(share) + 4)}" text-anchor="end">${share * 100}%</text>`,
    );
  }
  const ticks = niceTicks(end / 1000);
  for (const t of ticks) parts.push(`<text x="${fmt(x(t * 1000))}" y="${top + plotH + 14}" text-anchor="middle">${t} s</text>`);
  for (const e of report.events)
    parts.push(
      `<line data-series="event" x1="${fmt(x(e.atMs))}" x2="${fmt(x(e.atMs))}" y1="${top}" y2="${top + plotH}" stroke="#718096" stroke-dasharray="3,3"><title>${esc(e.label)} at ${fmt(e.atMs / 1000)} s</title></line>`,
    );
  for (const series of ['members', 'routes'] as const) {
    const points = report.samples
      .map((smp) => {
        const values = Object.values(smp[series]);
        return values.length === 0 ? undefined : `${fmt(x(smp.atMs))},${fmt(y(values.filter(Boolean).length / values.length))}`;
      })
      .filter((p): p is string => p !== undefined);
    parts.push(`<polyline data-series="${series}" fill="none" stroke="${COLORS[series]}" stroke-width="2" points="${points.join(' ')}"/>`);
  }
  const chart = `<svg id="timeline" width="${W}" height="${top + plotH + 24}" viewBox="0 0 ${W} ${top + plotH + 24}" role="img" aria-label="share of nodes agreeing over time">${parts.join('')}</svg>`;
  // Lanes: one row per node and view, coloured per sample.
  const laneH = 9;
  const lanes: string[] = [];
  const rows = report.nodes.flatMap((n) => (n.startsWith('m') ? [[n, 'members'] as const] : [[n, 'members'] as const, [n, 'routes'] as const]));
  rows.forEach(([node, view], i) => {
    const ly = i * (laneH + 2);
    lanes.push(`<text x="${left - 6}" y="${ly + laneH - 1}" text-anchor="end">${esc(node)} ${view === 'members' ? 'mem' : 'rt'}</text>`);
    report.samples.forEach((smp, k) => {
      const next = report.samples[k + 1]?.atMs ?? end;
      const v = smp[view][node];
      const color = v === undefined ? '#e2e8f0' : v ? '#9ae6b4' : '#feb2b2';
      lanes.push(`<rect data-series="lane-${esc(node)}-${view}" x="${fmt(x(smp.atMs))}" y="${ly}" width="${fmt(Math.max(0.5, x(next) - x(smp.atMs)))}" height="${laneH}" fill="${color}"/>`);
    });
  });
  const lanesSvg = `<svg id="lanes" width="${W}" height="${rows.length * (laneH + 2)}" viewBox="0 0 ${W} ${rows.length * (laneH + 2)}" role="img" aria-label="per node agreement">${lanes.join('')}</svg>`;
  const legend = `<p class="legend"><span><i class="swatch" style="background:${COLORS['members']}"></i>membership views agreeing</span><span><i class="swatch" style="background:${COLORS['routes']}"></i>kernel routes agreeing</span>${Object.entries(
    FAULT_COLORS,
  )
    .map(([k, c]) => `<span><i class="swatch" style="background:${c}"></i>${k === 'down' ? 'node down' : k}</span>`)
    .join(
      '',
    )}<span>lanes: <i class="swatch" style="background:#9ae6b4"></i>agrees <i class="swatch" style="background:#feb2b2"></i>disagrees <i class="swatch" style="background:#e2e8f0"></i>not running</span></p>`;
  return `${chart}${legend}${lanesSvg}`;
}

function niceTicks(maxS: number): number[] {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600];
  const step = steps.find((st) => maxS / st <= 10) ?? 1200;
  const out: number[] = [];
  for (let t = 0; t <= maxS; t += step) out.push(t);
  return out;
}

function convergenceChart(report: LabReport): string {
  const conv = convergence(report.events);
  const kinds = Object.keys(conv);
  if (kinds.length === 0) return '<p>No events.</p>';
  const W = 1000;
  const left = 110;
  const plotW = W - left - 30;
  const rowH = 66;
  const maxMs = Math.max(1000, ...report.events.flatMap((e) => MEASURES.map((m) => e[m] ?? 0)));
  const x = (ms: number): number => left + (ms / maxMs) * plotW;
  const parts: string[] = [];
  kinds.forEach((kind, i) => {
    const y0 = i * rowH + 10;
    parts.push(
      `<text x="${left - 8}" y="${y0 + rowH / 2}" text-anchor="end">${esc(kind)}</text><line x1="${left}" x2="${left + plotW}" y1="${y0 + rowH - 4}" y2="${y0 + rowH - 4}" stroke="#edf2f7"/>`,
    );
    MEASURES.forEach((m, k) => {
      const my = y0 + 8 + k * 14;
      const of = report.events.filter((e) => e.kind === kind);
      for (const e of of) {
        if (!measured(e, m)) continue;
        const v = e[m];
        if (v === undefined) parts.push(`<text data-series="conv-${esc(kind)}-${m}-missed" x="${left + plotW + 4}" y="${my + 4}" fill="#c53030">×</text>`);
        else
          parts.push(
            `<circle data-series="conv-${esc(kind)}-${m}" cx="${fmt(x(v))}" cy="${my}" r="4" fill="${COLORS[m]}" opacity="0.8"><title>${esc(e.label)}: ${MEASURE_NAMES[m]} ${v} ms</title></circle>`,
          );
      }
      const d = conv[kind]?.[m];
      if (d?.p50 !== undefined) parts.push(`<line x1="${fmt(x(d.p50))}" x2="${fmt(x(d.p50))}" y1="${my - 6}" y2="${my + 6}" stroke="#1a202c" stroke-width="2"><title>p50 ${d.p50} ms</title></line>`);
      if (d?.p99 !== undefined) parts.push(`<line x1="${fmt(x(d.p99))}" x2="${fmt(x(d.p99))}" y1="${my - 6}" y2="${my + 6}" stroke="#c53030" stroke-width="2"><title>p99 ${d.p99} ms</title></line>`);
    });
  });
  const axisY = kinds.length * rowH + 10;
  for (const t of niceTicks(maxMs / 1000)) parts.push(`<text x="${fmt(x(t * 1000))}" y="${axisY + 14}" text-anchor="middle">${t} s</text>`);
  const svg = `<svg id="convergence" width="${W}" height="${axisY + 22}" viewBox="0 0 ${W} ${axisY + 22}" role="img" aria-label="convergence per event kind">${parts.join('')}</svg>`;
  const legend = `<p class="legend">${MEASURES.map((m) => `<span><i class="swatch" style="background:${COLORS[m]}"></i>${MEASURE_NAMES[m]}</span>`).join('')}<span>marks: black p50, red p99; × never converged</span></p>`;
  const table = `<table id="convergence-table"><tr><th>event</th>${MEASURES.map((m) => `<th class="num">${MEASURE_NAMES[m]} p50 / p99 ms</th>`).join('')}</tr>${kinds
    .map(
      (k) =>
        `<tr><td>${esc(k)}</td>${MEASURES.map((m) => {
          const d = conv[k]?.[m];
          return `<td class="num">${d === undefined || d.n === 0 ? (d?.missed === 0 ? 'n/a' : 'never') : `${d.p50} / ${d.p99}`}${d !== undefined && d.missed > 0 ? ` (${d.missed} missed)` : ''}</td>`;
        }).join('')}</tr>`,
    )
    .join('')}</table>`;
  return `${svg}${legend}${table}`;
}

function eventTable(report: LabReport): string {
  const cell = (e: (typeof report.events)[number], m: (typeof MEASURES)[number]): string => `<td class="num">${!measured(e, m) ? 'n/a' : (e[m] ?? '—')}</td>`;
  return `<h2>Events</h2><table id="events"><tr><th>time</th><th>event</th>${MEASURES.map((m) => `<th class="num">${MEASURE_NAMES[m]} ms</th>`).join('')}</tr>${report.events
    .map((e) => `<tr><td class="num">${fmt(e.atMs / 1000)} s</td><td>${esc(e.label)}</td>${MEASURES.map((m) => cell(e, m)).join('')}</tr>`)
    .join('')}</table>`;
}

function stepTable(report: LabReport): string {
  return `<h2>Steps</h2><table id="steps"><tr><th>time</th><th>step</th><th>what</th></tr>${report.steps
    .map((st) => `<tr><td class="num">${fmt(st.atMs / 1000)} s</td><td>${st.repetition}.${st.index + 1}</td><td>${esc(st.text)}</td></tr>`)
    .join('')}</table>`;
}
