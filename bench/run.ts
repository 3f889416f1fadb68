/**
 * `npm run bench -- [names...] [--quick] [--sizes=A,B]`: runs bench/<name>.ts (all of them
 * without names), prints each table and writes bench/results/<name>.json. `--sizes` replaces the
 * sizes of benchmarks that have them (cluster nodes, e2e agents).
 */
import '../src/polyfills.js';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report } from './lib/report.js';
import type { Benchmark } from './lib/types.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/bench; results go to the source tree's bench/results.
const repoRoot = resolve(here, '..', '..');
const resultsDir = join(repoRoot, 'bench', 'results');

function available(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.js') && f !== 'run.js')
    .map((f) => f.slice(0, -3))
    .sort();
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const sizesArg = args.find((a) => a.startsWith('--sizes='));
  const sizes = sizesArg === undefined ? undefined : sizesArg.slice('--sizes='.length).split(',').map(Number);
  if (sizes?.some((n) => !Number.isInteger(n) || n < 1)) {
    process.stderr.write(`${sizesArg} is not valid; expected --sizes=N[,N...] with positive integers\n`);
    return 2;
  }
  const names = args.filter((a) => !a.startsWith('--'));
  const known = available();
  const selected = names.length > 0 ? names : known;
  const unknown = selected.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; available: ${known.join(', ')}\n`);
    return 2;
  }
  for (const name of selected) {
    const mod = (await import(join(here, `${name}.js`))) as { default: Benchmark };
    const bench = mod.default;
    const started = performance.now();
    const result = await bench.run({ quick, ...(sizes === undefined ? {} : { sizes }), log: (m) => process.stderr.write(`[${name}] ${m}\n`) });
    process.stdout.write(`${report(name, bench.description, result, resultsDir)}\n`);
    process.stdout.write(`(${name} took ${((performance.now() - started) / 1000).toFixed(1)} s)\n\n`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
