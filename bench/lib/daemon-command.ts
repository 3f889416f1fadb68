/**
 * The daemon command the namespace benchmarks start: the shipped bundle (`npm run build`, see
 * tools/bundle.mjs) with the packaged command's Node flags and environment, as /usr/bin/lashup
 * runs it. The vips benchmark used to run the unbundled tsc output without the flags: module
 * loading of hundreds of files made its formation 5x slower than the e2e benchmark's and the
 * daemons' memory was not the shipped one's.
 *
 * LASHUP_BENCH_DAEMON_FLAGS (a developer's aid, off in normal runs): extra Node flags for
 * every daemon, space-separated, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (Node refuses
 * --cpu-prof in NODE_OPTIONS). A daemon writes its profile when it exits (SIGTERM at the end).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../../src/daemon/index.js';
import type { NetnsCluster } from '../../src/demo/index.js';

const here = dirname(fileURLToPath(import.meta.url));

export function daemonCommand(): string[] {
  const extra = (process.env['LASHUP_BENCH_DAEMON_FLAGS'] ?? '').split(' ').filter((f) => f !== '');
  const env = Object.entries(DAEMON_ENV).map(([k, v]) => `${k}=${v}`);
  return ['env', ...env, process.execPath, ...DAEMON_NODE_FLAGS, ...extra, join(here, '..', '..', 'bundle', 'lashup.cjs')];
}

/**
 * With profiling flags, stops every daemon with SIGTERM (a graceful leave, then exit) so each
 * writes its profile: the cluster's own teardown kills with SIGKILL, which writes nothing.
 */
export async function stopForProfiles(cluster: NetnsCluster): Promise<void> {
  if (!(process.env['LASHUP_BENCH_DAEMON_FLAGS'] ?? '').includes('--cpu-prof')) return;
  await Promise.all([...cluster.nodes.keys()].map((name) => cluster.signal(name, 'SIGTERM')));
}
