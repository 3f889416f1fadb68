/**
 * `npm run build` step 2: bundles the compiled daemon, CLI and CNI plugin into dist/bundle with
 * esbuild. Loading ~700 module files took a daemon 440 ms of CPU and 88 MiB of memory before it
 * did anything; the bundle loads in 130 ms and 65 MiB (measured on this machine, Node 20). That
 * start-up was on the path of every agent's "process spawn -> routes everywhere" and of every
 * CNI ADD, and a cluster starting on shared cores paid it once per process.
 *
 * Entries (dist/bundle/<name>.js): lashup-ipam (the CNI plugin) and bench-cluster-worker (the
 * cluster benchmark's node host, so the benchmark measures the shipped code's memory). Shared
 * code goes into chunks in the same folder.
 *
 * External: netlink (a native addon found through node-gyp-build beside its package) and
 * msgpackr-extract (msgpackr's optional native accelerator). CommonJS packages inside an ES
 * module bundle need `require`: the banner makes one.
 *
 * The CLI and daemon (the `lashup` command) are bundled apart, as CommonJS, with notify-child.cjs
 * (the netlink notification helper the kernel module forks from beside its own file, so it sits
 * in the same folder; CommonJS for the same start-up reason as below: every agent forks one at
 * start). lashup.cjs, a loader that imports only Node's modules, runs lashup-main.cjs, the whole
 * program in one file, from its V8 code cache. CommonJS because a code cache is per script, and
 * an ES module entry, even the loader alone, cost a start about 30 ms of CPU more (Node's ES
 * module loader; 10 starts each, median 270 vs 240 ms). The program is warmed up once with the
 * daemon's Node flags to write its V8 code cache (lashup-main.cjs.cache; src/cli/code-cache.ts
 * says why and what it saves). A warm-up that fails (no loopback networking, say) leaves no
 * cache: the command then compiles its code as before.
 */
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ordinalComparePlugin } from './ordinal-compare.mjs';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../dist/src/daemon/runtime-flags.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Chunk names carry content hashes: clear the last build's.
rmSync(join(root, 'dist', 'bundle'), { recursive: true, force: true });
// Options both builds share.
const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  // The version from package.json, as a literal (src/daemon/version.ts).
  define: { __LASHUP_VERSION__: JSON.stringify(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version) },
  sourcemap: 'linked',
  external: ['netlink', 'msgpackr-extract'],
  // Dependencies' stable-order sorts without ICU's collator (about 2 MiB resident per daemon).
  plugins: [ordinalComparePlugin],
  // Whitespace and syntax minified, names kept (stack frames still name their functions): V8 keeps
  // each module's source in the heap for lazy compilation, and the chunks shrank from 3.0 to
  // 2.0 MB, 1.6 MiB less resident once loaded (the cluster worker's import, 6 runs each: 55.4 vs
  // 57.0 MiB; its CPU 103 vs 106 ms, within noise). Positions in a stack trace are then columns of
  // one long line: run with NODE_OPTIONS=--enable-source-maps beside the build's .map files.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
};
await build({
  ...common,
  entryPoints: {
    'lashup-ipam': 'dist/src/cni/plugin-main.js',
    'bench-cluster-worker': 'dist/bench/lib/cluster-worker.js',
  },
  outdir: 'dist/bundle',
  splitting: true,
  format: 'esm',
  banner: { js: "import { createRequire as __lashupCreateRequire } from 'node:module'; const require = __lashupCreateRequire(import.meta.url);" },
});
// The `lashup` command: its loader and its program, each one CommonJS script. `import.meta.url`
// (the notification helper is forked from beside the module that forks it) becomes the file's URL.
await build({
  ...common,
  entryPoints: { lashup: 'dist/src/cli/bundle-loader.js', 'lashup-main': 'dist/src/cli/bundle-main.js', 'notify-child': 'dist/src/dataplane/notify-child.js' },
  outdir: 'dist/bundle',
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  define: { ...common.define, 'import.meta.url': '__lashupImportMetaUrl' },
  banner: { js: "const __lashupImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// Without NODE_OPTIONS: V8 takes a cache only under the flags it was made with, so the warm-up
// runs with the daemon's flags alone (and a build inside the test runner, which rebuilds a stale
// dist/, must not hand the warm-up its coverage hooks).
const { NODE_OPTIONS: _ignored, ...buildEnv } = process.env;
const warm = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, join(root, 'tools', 'warm-code-cache.mjs')], {
  env: { ...buildEnv, ...DAEMON_ENV },
  encoding: 'utf8',
  timeout: 60_000,
});
if (warm.status !== 0) console.warn(`bundle: no code cache (lashup starts without one, about 100 ms of CPU slower): the warm-up failed: ${(warm.stderr || String(warm.error)).trim().slice(-1000)}`);
