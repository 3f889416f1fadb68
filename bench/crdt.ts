/**
 * CRDT costs on overlay-like state: one map entry per VTEP (10,000 of them), each a map of five
 * LWW registers (agentIp, vtepMac, subnet, subnet6, nodeId) written by its own agent, as the
 * overlay map holds it. Measures:
 * - joining a one-entry delta (one agent rewrites its agentIp) into the 10,000-entry map;
 * - joining two 10,000-entry maps: equal, half of the entries updated on one side, and disjoint;
 * - encoded size and encode/decode time, against JSON.stringify/JSON.parse of the same state
 *   (its canonical form) measured in the same run.
 */
import '../src/polyfills.js';
import { ORMap, decodeCrdt, encodeCrdt } from '../src/crdt/index.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';

const BASE_TS = 1_700_000_000_000_000;

function vtepIp(i: number): string {
  return `44.128.${(i >> 8) & 255}.${i & 255}`;
}

function writeEntry(map: ORMap, i: number, version: number): ORMap {
  const actor = `agent-${i}`;
  const marker = { ts: BASE_TS + version * 1_000_000 + i, actor };
  return map.mutate(actor, (m) =>
    m.map(vtepIp(i + 1), (e) => {
      e.lww('agentIp').write(marker, `198.18.${(i >> 8) & 255}.${i & 255}`);
      e.lww('vtepMac').write(marker, `70:b3:d5:80:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
      e.lww('subnet').write(marker, `9.${(i >> 8) & 255}.${i & 255}.0/24`);
      e.lww('subnet6').write(marker, `fd01:b::${i.toString(16)}:0:0:0/80`);
      e.lww('nodeId').write(marker, `${actor}.cluster.local`);
    }),
  );
}

function overlay(entries: number, offset = 0): ORMap {
  const map = new ORMap();
  for (let i = offset; i < offset + entries; i++) writeEntry(map, i, 0);
  return map;
}

function time(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

const bench: Benchmark = {
  name: 'crdt',
  description: 'delta and full joins, encoded size and codec speed on a 10,000-entry overlay map',
  async run(ctx): Promise<BenchResult> {
    const entries = ctx.quick ? 2000 : 10_000;
    const deltaJoins = ctx.quick ? 200 : 2000;
    const fullTrials = ctx.quick ? 3 : 9;
    const rows: Record<string, Cell>[] = [];
    const targets: TargetCheck[] = [];

    ctx.log(`building a ${entries}-entry overlay map`);
    const base = overlay(entries);

    // 1. One-entry deltas into the big map. Deltas are made on a separate replica, so they are remote.
    const source = base.clone();
    const target = base.clone();
    const deltas = Array.from({ length: deltaJoins }, (_, k) => writeEntry(source, k % entries, 1 + Math.floor(k / entries)));
    for (let k = 0; k < 50; k++) target.clone().join(deltas[k] as ORMap); // warm-up on a throwaway copy
    gc();
    const deltaUs = deltas.map((delta) => time(() => target.join(delta)) * 1000);
    const d = summarize(deltaUs);
    rows.push({ measure: 'join 1-entry delta into map', entries, n: d.n, 'p50 µs': round(d.p50), 'p99 µs': round(d.p99), 'max µs': round(d.max) });
    targets.push({ name: `1-entry delta join into a ${entries}-entry map (p50)`, target: '< 50 µs', measured: `${round(d.p50)} µs (p99 ${round(d.p99)} µs)`, met: d.p50 < 50 });

    // 2. Full joins of two big maps.
    const halfUpdated = base.clone();
    for (let i = 0; i < entries; i += 2) writeEntry(halfUpdated, i, 7);
    const disjoint = overlay(entries, entries);
    const fullCases: [string, ORMap][] = [
      ['join two equal maps', base.clone()],
      ['join maps, half the entries updated', halfUpdated],
      ['join two disjoint maps', disjoint],
    ];
    for (const [label, other] of fullCases) {
      const samples: number[] = [];
      for (let k = 0; k < fullTrials; k++) {
        const left = base.clone();
        gc();
        samples.push(time(() => left.join(other)));
      }
      const s = summarize(samples);
      rows.push({ measure: label, entries, n: s.n, 'p50 µs': round(s.p50 * 1000), 'p99 µs': round(s.p99 * 1000), 'max µs': round(s.max * 1000) });
      // Every case is held to the target on its own: a replica catching up (half updated) and a
      // new replica meeting a full one (disjoint) are as real as anti-entropy between equals.
      targets.push({ name: `full join: ${label.replace(/^join /, '')}, ${entries} entries (p50)`, target: '< 20 ms', measured: `${round(s.p50)} ms (min ${round(s.min)} ms)`, met: s.p50 < 20 });
    }

    // 3. Encoding against JSON of the same state.
    const encodeMs: number[] = [];
    const decodeMs: number[] = [];
    const jsonEncodeMs: number[] = [];
    const jsonDecodeMs: number[] = [];
    let encoded: Uint8Array = new Uint8Array(0);
    let json = '';
    for (let k = 0; k < fullTrials; k++) {
      gc();
      encodeMs.push(time(() => (encoded = encodeCrdt(base))));
      gc();
      decodeMs.push(time(() => decodeCrdt(encoded)));
      gc();
      jsonEncodeMs.push(time(() => (json = JSON.stringify(base.canonical()))));
      gc();
      jsonDecodeMs.push(time(() => JSON.parse(json)));
    }
    if (!decodeCrdt(encoded).equals(base)) throw new Error('decoded state differs from the encoded one');
    const jsonBytes = Buffer.byteLength(json);
    const plainJsonBytes = Buffer.byteLength(JSON.stringify(base.value()));
    const ratio = encoded.byteLength / jsonBytes;
    rows.push({
      measure: 'encode (msgpack v1)',
      entries,
      n: fullTrials,
      'p50 µs': round(summarize(encodeMs).p50 * 1000),
      'p99 µs': round(summarize(encodeMs).p99 * 1000),
      'max µs': round(summarize(encodeMs).max * 1000),
      bytes: encoded.byteLength,
    });
    rows.push({
      measure: 'decode (msgpack v1, validated)',
      entries,
      n: fullTrials,
      'p50 µs': round(summarize(decodeMs).p50 * 1000),
      'p99 µs': round(summarize(decodeMs).p99 * 1000),
      'max µs': round(summarize(decodeMs).max * 1000),
      bytes: encoded.byteLength,
    });
    rows.push({
      measure: 'baseline: JSON.stringify(state)',
      entries,
      n: fullTrials,
      'p50 µs': round(summarize(jsonEncodeMs).p50 * 1000),
      'p99 µs': round(summarize(jsonEncodeMs).p99 * 1000),
      'max µs': round(summarize(jsonEncodeMs).max * 1000),
      bytes: jsonBytes,
    });
    rows.push({
      measure: 'baseline: JSON.parse(state)',
      entries,
      n: fullTrials,
      'p50 µs': round(summarize(jsonDecodeMs).p50 * 1000),
      'p99 µs': round(summarize(jsonDecodeMs).p99 * 1000),
      'max µs': round(summarize(jsonDecodeMs).max * 1000),
      bytes: jsonBytes,
    });
    targets.push({ name: 'encoded size vs JSON.stringify of the same state', target: '<= 60%', measured: `${round(ratio * 100)}% (${encoded.byteLength} vs ${jsonBytes} bytes)`, met: ratio <= 0.6 });

    return {
      parameters: { entries, deltaJoins, fullTrials, fieldsPerEntry: 5, actors: entries },
      rows,
      targets,
      notes: [
        `bytes per entry: ${round(encoded.byteLength / entries)} encoded, ${round(jsonBytes / entries)} as JSON of the state, ${round(plainJsonBytes / entries)} as JSON of the plain values alone (no dots, markers or context)`,
        'JSON of the state is JSON.stringify(state.canonical()): the same dots, markers, context and values, as compact arrays',
        'the JSON baseline does no validation on parse; decode validates every field and rebuilds the store',
      ],
    };
  },
};

export default bench;
