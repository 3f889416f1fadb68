/**
 * Node.js flags (and below, environment) the daemon runs with: the packaged `lashup` command
 * passes them (tools/package.mjs writes them into /usr/bin/lashup), and the cluster and
 * end-to-end benchmarks start their daemons with them, so what is measured is what is shipped.
 *
 * `--max-semi-space-size=4` (MiB): V8's young generation may grow to three semi-spaces of 16 MiB
 * on a 64-bit machine, and once a start-up burst (a cluster forming: every member's join,
 * metadata and first deltas at once) has grown it, V8 keeps it. The daemon's steady state
 * allocates little: a one-node process after a 60-node formation held 117-122 MiB resident
 * with the default and 88-96 MiB with 4 MiB (heap in use after a full collection: ~20 MiB
 * either way), with no visible change in the CPU the formation took (88-90 s over the 14
 * processes, same run) or in update latency. 2 MiB saved ~1 MiB more; 1 MiB doubled an idle
 * node's CPU in an earlier measurement (scavenges every few hundred ms), so 4 it is.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/**
 * Environment the daemon's Node runs with, set the same way (an operator's own value wins).
 *
 * `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates its own malloc arena (up to 8 per
 * core), and Node's V8 and libuv threads allocate; each arena keeps its freed pages. The daemon's
 * allocations are almost all on its one JavaScript thread, so two arenas lose it nothing. One-node
 * processes of the 60-node cluster benchmark, same session, six each: resident memory above the
 * V8 heap 60.9 MB (default) vs 58.4 MB (two arenas), about 2.4 MiB less per process; idle CPU of
 * the same processes 8.6-12.5 ms/s either way.
 */
export const DAEMON_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * The warning a daemon logs when it did not start from the build's V8 code cache
 * (src/cli/code-cache.ts), or undefined when there is nothing to say (used, or not run from the
 * bundle). Every such start compiles the whole program (~100 ms of CPU more, and a new agent's
 * lease and routes that much later), and nothing else shows it but the
 * `lashup_daemon_code_cache_used` gauge. The CLI's other commands do not warn: any run with other
 * Node flags than DAEMON_NODE_FLAGS gets `rejected`, as it should.
 */
export function codeCacheWarning(result: string | undefined): { code: string; message: string } | undefined {
  switch (result) {
    case undefined:
    case 'used':
      return undefined;
    case 'missing':
    case 'stale':
    case 'unreadable':
      return {
        code: 'LASHUP_ERR_CODE_CACHE_UNUSABLE',
        message: `the build's code cache (lashup-main.cjs.cache beside lashup-main.cjs) is ${result}: the install is incomplete or mixed; every start compiles the program instead (about 100 ms of CPU more). Reinstall the package, or run \`npm run build\` in a source tree`,
      };
    case 'rejected':
      return {
        code: 'LASHUP_ERR_CODE_CACHE_REJECTED',
        message: `V8 rejected the build's code cache: this Node (${process.version}) or its flags (${process.execArgv.join(' ') || 'none'}) differ from the build's (${DAEMON_NODE_FLAGS.join(' ')}); every start compiles the program instead (about 100 ms of CPU more). Rebuild after a Node upgrade, and run the daemon through the packaged \`lashup\` command`,
      };
    default:
      return { code: 'LASHUP_ERR_CODE_CACHE_UNUSABLE', message: `the build's code cache was not used (${JSON.stringify(result)})` };
  }
}
