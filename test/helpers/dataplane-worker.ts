/**
 * A reconciler on the real kernel of the namespace it is started in (`ip netns exec NS node ...`),
 * for kernel tests. argv: self index, then remote indexes (see overlay-state.ts). It programs
 * `overlayState(self, remotes)`, then answers each stdin line: `stats` prints the reconciler's
 * stats as one JSON line; `resync` forces a listing; `kill-helper` kills the notification helper
 * (SIGKILL, by the pid this process started it with), as an overflow abort would. It exits when stdin closes.
 */
import { createInterface } from 'node:readline';
import { RealClock } from '../../src/common/index.js';
import { openNetlinkKernel, Reconciler } from '../../src/dataplane/index.js';
import { overlayState } from './overlay-state.js';

const [self, ...remotes] = process.argv.slice(2).map(Number);
const kernel = await openNetlinkKernel({});
const reconciler = new Reconciler({ kernel, clock: new RealClock(), resyncIntervalMs: Number(process.env['LASHUP_TEST_RESYNC_MS'] ?? 60_000) });
reconciler.setDesired(overlayState(self as number, remotes));
const first = await reconciler.start();
await kernel.helperReady();
process.stdout.write(`${JSON.stringify({ ready: true, first })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line === 'resync') reconciler.requestResync();
  if (line === 'kill-helper' && kernel.helperPid !== undefined) process.kill(kernel.helperPid, 'SIGKILL');
  process.stdout.write(`${JSON.stringify({ stats: reconciler.stats(), helperStarts: kernel.helperStarts })}\n`);
});
lines.on('close', () => {
  void reconciler.stop().then(() => kernel.close());
});
