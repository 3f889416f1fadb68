import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { systemdNotify } from '../../../src/cli/systemd.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-notify-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
// A stand-in for systemd-notify that records its arguments and the socket it was given.
const fake = join(dir, 'systemd-notify');
const record = join(dir, 'args');
writeFileSync(fake, `#!/bin/sh\nprintf '%s\\n' "$NOTIFY_SOCKET" "$@" > ${record}\n`);
chmodSync(fake, 0o755);

t.test('not under systemd: nothing runs', async (t) => {
  t.same(await systemdNotify('ready', 'x', { env: {}, command: fake }), { sent: false });
  t.same(await systemdNotify('ready', 'x', { env: { NOTIFY_SOCKET: '' }, command: fake }), { sent: false });
});

t.test('READY=1 and STOPPING=1 through the helper, naming the main PID', async (t) => {
  t.same(await systemdNotify('ready', 'agent a1 ready\nnow', { env: { NOTIFY_SOCKET: '/run/systemd/notify' }, command: fake, pid: 4242 }), { sent: true });
  t.same(readFileSync(record, 'utf8').trim().split('\n'), ['/run/systemd/notify', '--ready', '--pid=4242', '--status=agent a1 ready now']);
  t.same(await systemdNotify('stopping', 'leaving', { env: { NOTIFY_SOCKET: '@notify' }, command: fake, pid: 7 }), { sent: true });
  t.same(readFileSync(record, 'utf8').trim().split('\n'), ['@notify', 'STOPPING=1', '--pid=7', '--status=leaving']);
});

t.test('a helper that fails or is missing is reported, not thrown', async (t) => {
  const missing = await systemdNotify('ready', 'x', { env: { NOTIFY_SOCKET: '/run/x' }, command: join(dir, 'absent') });
  t.equal(missing.sent, false);
  t.match(missing.error, /ENOENT/);
  const failing = join(dir, 'failing');
  writeFileSync(failing, '#!/bin/sh\necho "No such socket" >&2\nexit 1\n');
  chmodSync(failing, 0o755);
  const failed = await systemdNotify('stopping', 'x', { env: { NOTIFY_SOCKET: '/run/x' }, command: failing });
  t.equal(failed.sent, false);
  t.match(failed.error, /No such socket/);
});
