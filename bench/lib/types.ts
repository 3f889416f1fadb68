/** What a benchmark module exports as its default. */
export interface Benchmark {
  /** File name without extension; also the results file name. */
  readonly name: string;
  /** One line shown before the table. */
  readonly description: string;
  run(context: BenchContext): Promise<BenchResult>;
}

export interface BenchContext {
  /** `--quick` was given: fewer trials and smaller sizes, for a smoke run. */
  readonly quick: boolean;
  /** `--sizes=A,B`: the sizes to run instead of the benchmark's own (where it has sizes). */
  readonly sizes?: readonly number[];
  /** Progress lines (to standard error, so the table stays clean). */
  log(message: string): void;
}

export type Cell = string | number | boolean | null;

export interface TargetCheck {
  /** What is measured, in words. */
  name: string;
  /** The target as stated in the issue. */
  target: string;
  /** The measured figure, with its unit. */
  measured: string;
  met: boolean;
}

export interface BenchResult {
  /** Inputs that shape the figures (sizes, trials, seeds, loss rates...). */
  parameters: Record<string, unknown>;
  /** The table: one row per configuration, same keys in every row. */
  rows: Record<string, Cell>[];
  /** Targets from the issue, checked against the measured figures (reported, never asserted in tests). */
  targets?: TargetCheck[];
  /** Free-form remarks printed under the table (baselines, layout, caveats). */
  notes?: string[];
}
