/** Summary statistics for benchmark distributions. */

/** The q-quantile (0..1) of `values` by linear interpolation; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export interface Distribution {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): Distribution {
  const n = values.length;
  const mean = n === 0 ? NaN : values.reduce((s, v) => s + v, 0) / n;
  return {
    n,
    // Loops, not Math.min(...values): spreading hundreds of thousands of latencies (the dns
    // benchmark's) overflowed the call stack.
    min: n === 0 ? NaN : values.reduce((m, v) => Math.min(m, v), Infinity),
    p50: quantile(values, 0.5),
    p99: quantile(values, 0.99),
    max: n === 0 ? NaN : values.reduce((m, v) => Math.max(m, v), -Infinity),
    mean,
  };
}

/** Rounds for display: 3 significant digits below 100, integers above. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 100) return Math.round(value);
  return Number(value.toPrecision(3));
}
