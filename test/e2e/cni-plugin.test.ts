/**
 * The lashup-ipam executable as a runtime runs it (bin/lashup-ipam over the compiled build):
 * environment and stdin in, the specification's JSON and exit status out.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { lashupCommand } from '../helpers/lashup-cli.js';

const plugin = fileURLToPath(new URL('../../bin/lashup-ipam', import.meta.url));

/** Runs the plugin; `stdin` is the configuration text, or a function that feeds the child's stdin. */
function invoke(env: Record<string, string>, stdin: string | ((input: NonNullable<ChildProcess['stdin']>) => void)): Promise<{ code: number; out: unknown }> {
  return new Promise((resolve) => {
    const child = execFile(plugin, [], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, timeout: 60_000, encoding: 'utf8' }, (error, stdout) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      let out: unknown = stdout;
      try {
        out = JSON.parse(stdout);
      } catch {
        // Not JSON: left as text, the assertions say so.
      }
      resolve({ code, out });
    });
    if (typeof stdin === 'string') child.stdin?.end(stdin);
    else if (child.stdin !== null) stdin(child.stdin);
  });
}

t.test('bin/lashup-ipam: VERSION, and error codes with a non-zero exit', async (t) => {
  await lashupCommand(); // builds dist/ when it is older than src/
  const version = await invoke({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  t.equal(version.code, 0);
  t.match(version.out, { supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  const noEnv = await invoke({}, '{}');
  t.equal(noEnv.code, 1);
  t.match(noEnv.out, { code: 4, msg: /CNI_COMMAND is not set/ });
  const badStdin = await invoke({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/run/netns/c', CNI_IFNAME: 'eth0' }, 'garbage');
  t.match(badStdin, { code: 1, out: { code: 6 } });
  const badConfig = await invoke(
    { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/run/netns/c', CNI_IFNAME: 'eth0' },
    JSON.stringify({ cniVersion: '1.0.0', name: 'dcos', ipam: { type: 'other' } }),
  );
  t.match(badConfig, { code: 1, out: { code: 7 } });
  const noDaemon = await invoke(
    { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/run/netns/c', CNI_IFNAME: 'eth0' },
    JSON.stringify({ cniVersion: '1.0.0', name: 'dcos', ipam: { type: 'lashup-ipam', socketPath: '/nonexistent/lashup.sock' } }),
  );
  t.match(noDaemon, { code: 1, out: { code: 11, msg: /not reachable/ } });
});

t.test('issue 14 item 7: 64 MB on stdin is answered with a CNI error, not a crash', async (t) => {
  await lashupCommand();
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/run/netns/c', CNI_IFNAME: 'eth0' };
  const huge = await invoke(env, (input) => {
    // The plugin stops reading early; the rest of the write fails with EPIPE, which is fine.
    input.on('error', () => undefined);
    const chunk = Buffer.alloc(1 << 20, 0x20);
    let left = 64;
    const pump = (): void => {
      while (left > 0) {
        left--;
        if (!input.write(chunk)) {
          input.once('drain', pump);
          return;
        }
      }
      input.end();
    };
    pump();
  });
  t.equal(huge.code, 1, 'non-zero exit');
  t.match(huge.out, { code: 6, msg: /larger than 1048576 bytes/ }, 'a decode failure on stdout');
});
