/**
 * The shipped build: `npm run build` bundles the CLI/daemon into dist/bundle/lashup.cjs (see
 * tools/bundle.mjs). The other process tests run the unbundled build (its coverage maps to the
 * sources); this one runs the bundle as an operator does: a master starts from a configuration
 * file with the packaged command's Node flags, from the build's code cache, answers `lashup status`
 * and leaves on SIGTERM.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../../src/daemon/index.js';
import { generateClusterKey } from '../../src/net/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';

const bundle = fileURLToPath(new URL('../../dist/bundle/lashup.cjs', import.meta.url));

/**
 * The environment the bundle's processes run with: this test's, with tap's coverage of child
 * processes off (`_TAPJS_PROCESSINFO_COVERAGE_=0`, @tapjs/processinfo). The program runs through
 * `vm.Script`, so tap cannot tell it is bundled code, and its source map put every bundled
 * dependency under node_modules into the report and its thresholds (CI: all files 70 %). The
 * sources it runs are the unbundled tests' to cover.
 */
function bundleEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...extra, _TAPJS_PROCESSINFO_COVERAGE_: '0' };
}

function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { timeout: 30_000, encoding: 'utf8', env: bundleEnv() }, (error, out, err) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, out, err });
    });
  });
}

t.test('the bundled lashup: usage, a master from a config file, status, SIGTERM', { timeout: 120_000 }, async (t) => {
  await lashupCommand(); // builds dist/ (and the bundle) when older than src/
  const usage = await cli('--help');
  t.equal(usage.code, 0, usage.err);
  t.match(usage.out, /usage: lashup <command>/);
  const version = await cli('--version');
  t.equal(
    version.out,
    `${(JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version}\n`,
    "the bundle carries package.json's version",
  );

  const dir = mkdtempSync(join(tmpdir(), 'lashup-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const config = join(dir, 'm1.json');
  writeFileSync(
    config,
    JSON.stringify({
      name: 'm1',
      role: 'master',
      underlayIp: '127.0.0.1',
      dataDir: join(dir, 'm1'),
      masters: ['m1'],
      seeds: [],
      cluster: { keys: [generateClusterKey()], label: 'bundle-test' },
      listen: { bindHost: '127.0.0.1', advertiseHost: '127.0.0.1', udpPort: 0, libp2pPort: 0 },
      membership: { profile: 'local' },
      api: { host: '127.0.0.1', port, socketPath: join(dir, 'm1', 'api.sock') },
      dns: { port: 0, upstreams: ['127.0.0.1:9'] },
    }),
  );
  const daemon = spawn(process.execPath, [...DAEMON_NODE_FLAGS, bundle, 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env: bundleEnv({ ...DAEMON_ENV }) });
  let stderr = '';
  daemon.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
  t.teardown(() => void (daemon.exitCode === null && daemon.kill('SIGKILL')));

  let status: { code: number; out: string; err: string } = { code: -1, out: '', err: '' };
  const up = await eventually(async () => {
    status = await cli('status', '--socket', join(dir, 'm1', 'api.sock'));
    return status.code === 0 && /"leader": "m1"/.test(status.out);
  }, 60_000);
  t.ok(up, `status answered with a leader: ${JSON.stringify(status)}; daemon stderr: ${stderr}`);
  t.match(JSON.parse(status.out), { name: 'm1', role: 'master', raft: { role: 'leader' } });
  // The build's code cache is made with these flags (tools/bundle.mjs): V8 must take it.
  t.match(stderr, /"msg":"lashup daemon started"/);
  t.match(/\{[^\n]*"lashup daemon started"[^\n]*\}/.exec(stderr)?.[0], /"codeCache":"used"/, 'started from the code cache');
  t.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), /^lashup_daemon_code_cache_used 1$/m, 'and says so in its metrics');

  daemon.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 after leaving');
  t.match(stderr, /lashup daemon stopped/);
});
