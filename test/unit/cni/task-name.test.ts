import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { askSocket, CniCode, CniService, runPlugin, taskNameFromCni } from '../../../src/cni/index.js';
import { VipError, VipErrorCode } from '../../../src/vips/index.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-cni-names-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('task names from args.lashup and CNI_ARGS: both parts or neither, valid characters, args first', async (t) => {
  t.equal(taskNameFromCni({}, undefined), undefined, 'no name given');
  t.equal(taskNameFromCni({ args: { cni: {} } }, 'IgnoreUnknown=1;K8S_POD_NAME=x'), undefined, 'other arguments are not names');
  t.same(taskNameFromCni({ args: { lashup: { task: 'web', framework: 'shop' } } }, undefined), { task: 'web', framework: 'shop' });
  t.same(taskNameFromCni({}, 'IgnoreUnknown=1; LASHUP_TASK=web.1 ;LASHUP_FRAMEWORK=marathon_x'), { task: 'web.1', framework: 'marathon_x' }, 'CNI_ARGS pairs, trimmed');
  t.same(taskNameFromCni({ args: { lashup: { task: 'a', framework: 'b' } } }, 'LASHUP_TASK=c;LASHUP_FRAMEWORK=d'), { task: 'a', framework: 'b' }, 'args win');
  t.same(taskNameFromCni({ args: { lashup: {} } }, 'LASHUP_TASK=c;LASHUP_FRAMEWORK=d'), { task: 'c', framework: 'd' }, 'an empty args.lashup falls through to CNI_ARGS');
  t.throws(() => taskNameFromCni({}, 'LASHUP_TASK=web'), { where: 'CNI_ARGS LASHUP_FRAMEWORK', message: /CNI_ARGS LASHUP_TASK is given but CNI_ARGS LASHUP_FRAMEWORK is not/ });
  t.throws(() => taskNameFromCni({ args: { lashup: { framework: 'shop' } } }, undefined), { where: 'args.lashup.task', message: /args\.lashup\.framework is given but args\.lashup\.task is not/ });
  t.throws(() => taskNameFromCni({ args: { lashup: { task: 'we b', framework: 'shop' } } }, undefined), { where: 'args.lashup.task', value: 'we b', message: /"we b" is not valid; expected 1-63/ });
  t.throws(() => taskNameFromCni({ args: { lashup: { task: 'web', framework: 7 } } }, undefined), { where: 'args.lashup.framework', value: 7, message: /framework = 7 is not valid/ });
  t.throws(() => taskNameFromCni({}, `LASHUP_TASK=${'x'.repeat(64)};LASHUP_FRAMEWORK=f`), { where: 'CNI_ARGS LASHUP_TASK', message: /expected 1-63/ }, 'longer than a DNS label');
  t.throws(
    () => taskNameFromCni({}, 'LASHUP_TASK=-web;LASHUP_FRAMEWORK=f'),
    { where: 'CNI_ARGS LASHUP_TASK', value: '-web', message: /starting with a letter or digit/ },
    'must start with a letter or digit',
  );
  t.throws(() => taskNameFromCni({ args: { lashup: 'web' } }, undefined), { where: 'args.lashup', message: /expected \{ "task": \.\.\., "framework": \.\.\. \}/ });
});

t.test('the plugin passes the name to the daemon, which keeps it with the lease; the result names the resolver', async (t) => {
  const socketPath = join(dir, 'n.sock');
  const leasesPath = join(dir, 'n.json');
  const s = new CniService({ agent: 'a1', socketPath, leasesPath, resolvers: (network) => (network === 'dcos' ? ['9.0.1.1'] : []) });
  s.setRanges({ dcos: { subnet: '9.0.1.0/29', gateway: '9.0.1.1' }, other: { subnet: '9.0.2.0/29', gateway: '9.0.2.1' } });
  await s.listen();
  t.teardown(() => s.close());
  let changes = 0;
  s.onChange = () => changes++;
  const config = (over: Record<string, unknown> = {}, name = 'dcos'): string => JSON.stringify({ cniVersion: '1.0.0', name, type: 'bridge', ipam: { type: 'lashup-ipam', socketPath }, ...over });
  const env = (over: Record<string, string> = {}): Record<string, string> => ({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', ...over });

  const add = await runPlugin(env({ CNI_ARGS: 'IgnoreUnknown=1;LASHUP_TASK=web;LASHUP_FRAMEWORK=shop' }), config(), askSocket);
  t.equal(add.code, 0, add.stdout);
  t.same(JSON.parse(add.stdout).dns, { nameservers: ['9.0.1.1'] }, 'the gateway is the resolver');
  t.match(s.pool.get('dcos', 'c1', 'eth0'), { task: 'web', framework: 'shop', address: '9.0.1.2' });
  t.equal(changes, 1);
  t.match(JSON.parse(readFileSync(leasesPath, 'utf8')), { attachments: [{ containerId: 'c1', task: 'web', framework: 'shop' }] }, 'the name is durable with the lease');
  const restarted = new CniService({ agent: 'a1', socketPath: join(dir, 'n2.sock'), leasesPath });
  t.match(restarted.pool.get('dcos', 'c1', 'eth0'), { task: 'web', framework: 'shop' }, 'and read back after a restart');

  const unnamed = await runPlugin(env({ CNI_CONTAINERID: 'c2' }), config({}, 'other'), askSocket);
  t.equal(unnamed.code, 0);
  t.equal(JSON.parse(unnamed.stdout).dns, undefined, 'no resolver named where the daemon gives none');
  t.equal(s.pool.get('other', 'c2', 'eth0')?.task, undefined);

  const codeOf = (out: { stdout: string }): { code: number; msg: string; details?: string } => JSON.parse(out.stdout);
  const half = codeOf(await runPlugin(env({ CNI_CONTAINERID: 'c3', CNI_ARGS: 'LASHUP_TASK=web' }), config(), askSocket));
  t.equal(half.code, CniCode.InvalidEnvironment, 'a half name in CNI_ARGS: invalid environment');
  t.match(half, { msg: /LASHUP_FRAMEWORK is not/, details: /LASHUP_ERR_CNI_TASK_NAME/ });
  const bad = codeOf(await runPlugin(env({ CNI_CONTAINERID: 'c3' }), config({ args: { lashup: { task: 'a/b', framework: 'x' } } }), askSocket));
  t.equal(bad.code, CniCode.InvalidConfig, 'a bad name in args: invalid configuration');
  t.match(bad.msg, /args\.lashup\.task = "a\/b" is not valid/);
  t.equal(s.pool.get('dcos', 'c3', 'eth0'), undefined, 'nothing was allocated for a refused name');

  // The daemon checks the name itself too (the socket is not only the plugin's).
  const direct = s.handle(JSON.stringify({ op: 'add', network: 'dcos', containerId: 'c4', ifname: 'eth0', task: 'web' }));
  t.match(direct, { ok: false, error: { code: 'LASHUP_ERR_CNI_BAD_REQUEST', message: /framework = \(missing\) is not valid/ } });
  t.equal(s.stats.badRequests, 1);
});

t.test('VIPs come with the name: args.lashup.vips or CNI_ARGS LASHUP_VIPS, each checked', async (t) => {
  t.same(taskNameFromCni({}, 'LASHUP_TASK=web;LASHUP_FRAMEWORK=shop;LASHUP_VIPS=/web:80:8080, 1.2.3.4:5000/udp'), {
    task: 'web',
    framework: 'shop',
    vips: ['/web:80:8080', '1.2.3.4:5000/udp'],
  });
  t.same(taskNameFromCni({ args: { lashup: { task: 'web', framework: 'shop', vips: ['/web:80'] } } }, undefined), { task: 'web', framework: 'shop', vips: ['/web:80'] });
  t.throws(() => taskNameFromCni({}, 'LASHUP_TASK=web;LASHUP_FRAMEWORK=shop;LASHUP_VIPS=/web:99999'), {
    where: 'CNI_ARGS LASHUP_VIPS',
    value: '/web:99999',
    code: 'LASHUP_ERR_VIP_INVALID',
    message: /port "99999" is not valid/,
  });
  t.throws(() => taskNameFromCni({}, 'LASHUP_VIPS=/web:80'), { where: 'CNI_ARGS LASHUP_VIPS', message: /without a task name/ }, 'a VIP needs a task');
  t.throws(() => taskNameFromCni({ args: { lashup: { task: 'w', framework: 'f', vips: '/web:80' } } }, undefined), {
    where: 'args.lashup.vips',
    code: 'LASHUP_ERR_VIP_INVALID',
    message: /expected up to 16/,
  });

  const socketPath = join(dir, 'v.sock');
  const refusals: string[] = [];
  const s = new CniService({
    agent: 'a1',
    socketPath,
    leasesPath: join(dir, 'v.json'),
    checkVip: (text) => {
      if (text.startsWith('9.')) {
        refusals.push(text);
        throw new VipError(VipErrorCode.InOverlay, `VIP ${text} lies inside overlay subnet 9.0.0.0/8`, { value: text });
      }
    },
  });
  s.setRanges({ dcos: { subnet: '9.0.1.0/29', gateway: '9.0.1.1' } });
  await s.listen();
  t.teardown(() => s.close());
  const config = JSON.stringify({ cniVersion: '1.0.0', name: 'dcos', type: 'bridge', ipam: { type: 'lashup-ipam', socketPath } });
  const env = (id: string, vips: string): Record<string, string> => ({
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: id,
    CNI_NETNS: '/run/netns/x',
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `LASHUP_TASK=web;LASHUP_FRAMEWORK=shop;LASHUP_VIPS=${vips}`,
  });
  const ok = await runPlugin(env('v1', '/web:80'), config, askSocket);
  t.equal(ok.code, 0, ok.stdout);
  t.match(s.pool.get('dcos', 'v1', 'eth0'), { task: 'web', vips: ['/web:80'] }, 'the VIPs are kept with the lease');
  const refused = JSON.parse((await runPlugin(env('v2', '9.0.0.7:80'), config, askSocket)).stdout) as { code: number; msg: string };
  t.equal(refused.code, CniCode.InvalidConfig);
  t.match(refused.msg, /inside overlay subnet/);
  t.same(refusals, ['9.0.0.7:80']);
  t.equal(s.pool.get('dcos', 'v2', 'eth0'), undefined, 'nothing allocated for a refused VIP');
});
