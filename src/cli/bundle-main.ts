/**
 * The program of the built `lashup` command: bundled as one CommonJS file (dist/bundle/
 * lashup-main.cjs, see tools/bundle.mjs) that the command's loader (bundle-loader.ts) runs from
 * the build's code cache. No top-level await: a CommonJS script cannot have one.
 */
import '../polyfills.js';
import { run, type StartInfo } from './commands.js';

export { warmUp } from './warm-up.js';

/** Runs the command line `argv` and exits with its code (as main.ts does unbundled). */
export function main(argv: readonly string[], start: StartInfo): void {
  void run(argv, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }, start).then((code) => process.exit(code));
}
