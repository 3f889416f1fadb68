/**
 * Test networks for kernel tests: the namespace builder lives in src/demo (the demo and the
 * end-to-end benchmark use it too); what is only for tests is here.
 */
import { run } from '../../src/demo/netns.js';

export { eventually, must, run, reapStale, TestNet } from '../../src/demo/netns.js';
export type { ExecResult, TestHost, TestNetOptions } from '../../src/demo/netns.js';

let probed: Promise<string | undefined> | undefined;

/** True where the environment demands kernel tests run (CI, or an explicit request). */
export function netnsRequired(): boolean {
  return process.env['CI'] === 'true' || process.env['LASHUP_REQUIRE_NETNS'] === '1';
}

/** Undefined when namespaces work here, otherwise why not. */
function probe(): Promise<string | undefined> {
  probed ??= (async () => {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root';
    const which = await run(['ip', '-V']);
    if (which.code !== 0) return 'iproute2 (`ip`) is not installed';
    const name = `lxt-${process.pid}-probe`;
    const add = await run(['ip', 'netns', 'add', name]);
    if (add.code !== 0) return `cannot create a network namespace: ${add.stderr.trim()}`;
    await run(['ip', 'netns', 'del', name]);
    return undefined;
  })();
  return probed;
}

/**
 * For tap's `skip` option: false when kernel tests can run; a reason when they cannot and are
 * not required. When they are required (CI=true or LASHUP_REQUIRE_NETNS=1) but cannot run, this
 * throws, so the test file fails instead of passing silently.
 */
export async function kernelTestSkip(): Promise<false | string> {
  const reason = await probe();
  if (reason === undefined) return false;
  const message = `kernel test needs root and network namespaces: ${reason}`;
  if (netnsRequired()) throw new Error(`${message} (required because CI=true or LASHUP_REQUIRE_NETNS=1)`);
  return `${message}; set LASHUP_REQUIRE_NETNS=1 to make this a failure`;
}
