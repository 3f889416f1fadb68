import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { askSocket, CniCode, CniService, ContainerPool, conflist, runPlugin, writeConflist } from '../../../src/cni/index.js';
import { Scheduler } from '../../../src/sim/index.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-cni-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): { socketPath: string; leasesPath: string } => {
  n++;
  return { socketPath: join(dir, `s${n}.sock`), leasesPath: join(dir, `leases${n}.json`) };
};

const ask = askSocket;

t.test('pool: lowest free address, idempotent ADD, DEL, GC, exhaustion with counts', async (t) => {
  const pool = new ContainerPool('a1');
  pool.setRanges({ dcos: { subnet: '9.0.1.0/29', gateway: '9.0.1.1' } });
  t.equal(pool.capacity('dcos'), 5, '8 addresses less network, gateway, broadcast');
  const first = pool.add('dcos', 'c1', 'eth0', 1);
  t.match(first, { created: true, attachment: { address: '9.0.1.2', prefixLen: 29, gateway: '9.0.1.1' } });
  t.match(pool.add('dcos', 'c1', 'eth0', 2), { created: false, attachment: { address: '9.0.1.2' } }, 'a repeated ADD gets the same address');
  t.equal(pool.add('dcos', 'c2', 'eth0', 3).attachment.address, '9.0.1.3');
  t.equal(pool.add('dcos', 'c1', 'eth1', 3).attachment.address, '9.0.1.4', 'another interface of the same container is another attachment');
  t.ok(pool.del('dcos', 'c2', 'eth0'));
  t.notOk(pool.del('dcos', 'c2', 'eth0'), 'a second DEL finds nothing (and is still fine)');
  t.equal(pool.add('dcos', 'c3', 'eth0', 4).attachment.address, '9.0.1.3', 'freed addresses are reused lowest first');
  pool.add('dcos', 'c4', 'eth0', 5);
  pool.add('dcos', 'c5', 'eth0', 5);
  t.throws(() => pool.add('dcos', 'c6', 'eth0', 6), { code: 'LASHUP_ERR_CNI_EXHAUSTED', message: /network dcos on agent a1 has no free container address: 5 of 5 in use \(9\.0\.1\.0\/29\)/ });
  t.throws(() => pool.add('other', 'c1', 'eth0', 6), { code: 'LASHUP_ERR_CNI_UNKNOWN_NETWORK', message: /leased: dcos/ });
  t.same(
    pool
      .gc('dcos', [{ containerId: 'c1', ifname: 'eth0' }])
      .map((a) => a.containerId)
      .sort(),
    ['c1', 'c3', 'c4', 'c5'],
    'GC collects all but the valid attachments',
  );
  t.equal(pool.used('dcos'), 1);
  const v6 = new ContainerPool('a1');
  v6.setRanges({ dcos6: { subnet: 'fd01:b::1:0:0:0/81', gateway: 'fd01:b::1:0:0:1' }, bad: { subnet: 'nope', gateway: 'x' } });
  t.same(v6.networks(), ['dcos6'], 'a malformed range is ignored');
  t.equal(v6.add('dcos6', 'c1', 'eth0', 1).attachment.address, 'fd01:b::1:0:0:2');
});

t.test('service: requests, bad input, not ready, persistence across a restart', async (t) => {
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths });
  const call = (req: Record<string, unknown>): Record<string, unknown> => s.handle(JSON.stringify(req));
  t.match(
    call({ op: 'add', network: 'dcos', containerId: 'c1', ifname: 'eth0' }),
    { ok: false, error: { code: 'LASHUP_ERR_CNI_NOT_READY', cniCode: CniCode.TryAgainLater } },
    'no lease yet: try again later',
  );
  s.setRanges({ dcos: { subnet: '9.0.1.0/25', gateway: '9.0.1.1' } });
  t.match(call({ op: 'status' }), { ok: true, ready: true, networks: ['dcos'] });
  t.match(call({ op: 'add', network: 'dcos', containerId: 'c1', ifname: 'eth0' }), { ok: true, attachment: { address: '9.0.1.2' } });
  t.match(call({ op: 'check', network: 'dcos', containerId: 'c1', ifname: 'eth0' }), { ok: true });
  t.match(call({ op: 'check', network: 'dcos', containerId: 'zz', ifname: 'eth0' }), { ok: false, error: { cniCode: CniCode.UnknownContainer } });
  t.match(s.handle('{not json'), { ok: false, error: { cniCode: CniCode.DecodeFailure } });
  t.match(call({ op: 'add', network: 'dcos', containerId: '../etc', ifname: 'eth0' }), { ok: false, error: { cniCode: CniCode.InvalidConfig, message: /containerId/ } });
  t.match(call({ op: 'fly', network: 'dcos', containerId: 'c1', ifname: 'eth0' }), { ok: false, error: { message: /op "fly"/ } });
  t.match(call({ op: 'add', network: 'dcos', containerId: 'c2', ifname: 'eth0' }), { ok: true, attachment: { address: '9.0.1.3' } });
  t.match(call({ op: 'del', network: 'dcos', containerId: 'c2', ifname: 'eth0' }), { ok: true });
  t.match(call({ op: 'del', network: 'dcos', containerId: 'c2', ifname: 'eth0' }), { ok: true }, 'DEL is idempotent');
  t.match(call({ op: 'gc', network: 'dcos', valid: [] }), { ok: true, removed: 1 });
  t.match(call({ op: 'add', network: 'dcos', containerId: 'c9', ifname: 'eth0' }), { ok: true, attachment: { address: '9.0.1.2' } });
  // A restarted daemon reads the leases back: the same container keeps its address, others do not get it.
  const again = new CniService({ agent: 'a1', ...paths });
  again.setRanges({ dcos: { subnet: '9.0.1.0/25', gateway: '9.0.1.1' } });
  t.match(again.handle(JSON.stringify({ op: 'add', network: 'dcos', containerId: 'c9', ifname: 'eth0' })), { ok: true, attachment: { address: '9.0.1.2' } });
  t.match(again.handle(JSON.stringify({ op: 'add', network: 'dcos', containerId: 'new', ifname: 'eth0' })), { ok: true, attachment: { address: '9.0.1.3' } });
  t.equal(s.stats.badRequests, 3);
  writeFileSync(paths.leasesPath, '{ torn');
  t.throws(() => new CniService({ agent: 'a1', ...paths }), { message: /not readable JSON/ }, 'a corrupt lease file stops the service instead of handing addresses out twice');
});

t.test('20 concurrent ADDs over the socket get 20 unique addresses', async (t) => {
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths });
  s.setRanges({ dcos: { subnet: '9.0.1.0/25', gateway: '9.0.1.1' } });
  await s.listen();
  t.teardown(() => s.close());
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => ask(paths.socketPath, { op: 'add', network: 'dcos', containerId: `c${i}`, ifname: 'eth0' })));
  const addresses = replies.map((r) => (r['attachment'] as { address: string }).address);
  t.equal(new Set(addresses).size, 20);
  t.equal(JSON.parse(readFileSync(paths.leasesPath, 'utf8')).attachments.length, 20, 'all 20 are on disk');
});

t.test('plugin: commands, results and the specification error codes', async (t) => {
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths });
  s.setRanges({ dcos: { subnet: '9.0.1.0/30', gateway: '9.0.1.1' } });
  await s.listen();
  t.teardown(() => s.close());
  const config = (over: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}): string =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'dcos', type: 'bridge', ipam: { type: 'lashup-ipam', socketPath: paths.socketPath, ...ipam }, ...over });
  const env = (command: string, over: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'ctr1',
    CNI_NETNS: '/run/netns/x',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    ...over,
  });
  const codeOf = (out: { stdout: string }): number => (JSON.parse(out.stdout) as { code: number }).code;

  const version = await runPlugin({ CNI_COMMAND: 'VERSION' }, '', ask);
  t.match(JSON.parse(version.stdout), { supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  const add = await runPlugin(env('ADD'), config(), ask);
  t.equal(add.code, 0);
  t.same(JSON.parse(add.stdout), { cniVersion: '1.0.0', ips: [{ address: '9.0.1.2/30', gateway: '9.0.1.1' }], routes: [{ dst: '0.0.0.0/0', gw: '9.0.1.1' }] });
  const old = await runPlugin(env('ADD'), config({ cniVersion: '0.4.0' }), ask);
  t.match(JSON.parse(old.stdout), { ips: [{ version: '4' }] }, 'a 0.4.0 result names the IP version');
  const exhausted = await runPlugin(env('ADD', { CNI_CONTAINERID: 'ctr2' }), config(), ask);
  t.equal(exhausted.code, 1);
  t.match(JSON.parse(exhausted.stdout), { code: CniCode.TryAgainLater, msg: /network dcos on agent a1 has no free container address: 1 of 1 in use/, details: /LASHUP_ERR_CNI_EXHAUSTED/ });
  t.equal((await runPlugin(env('CHECK'), config(), ask)).code, 0);
  t.equal((await runPlugin(env('DEL'), config(), ask)).code, 0);
  t.equal((await runPlugin(env('DEL'), config(), ask)).code, 0, 'DEL twice');
  t.equal(codeOf(await runPlugin(env('CHECK'), config(), ask)), CniCode.UnknownContainer);
  t.equal((await runPlugin(env('GC'), config({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'ctr1', ifname: 'eth0' }] }), ask)).code, 0);
  t.equal((await runPlugin(env('STATUS'), config({ cniVersion: '1.1.0' }), ask)).code, 0);

  t.equal(codeOf(await runPlugin({}, config(), ask)), CniCode.InvalidEnvironment, 'no CNI_COMMAND');
  t.equal(codeOf(await runPlugin(env('FLY'), config(), ask)), CniCode.InvalidEnvironment);
  t.equal(codeOf(await runPlugin(env('ADD', { CNI_CONTAINERID: undefined }), config(), ask)), CniCode.InvalidEnvironment, 'no CNI_CONTAINERID');
  t.equal(codeOf(await runPlugin(env('ADD', { CNI_NETNS: '' }), config(), ask)), CniCode.InvalidEnvironment, 'empty CNI_NETNS');
  t.equal(codeOf(await runPlugin(env('ADD'), '{ not json', ask)), CniCode.DecodeFailure);
  t.equal(codeOf(await runPlugin(env('ADD'), '[1]', ask)), CniCode.DecodeFailure);
  t.equal(codeOf(await runPlugin(env('ADD'), config({ cniVersion: '9.9.9' }), ask)), CniCode.IncompatibleVersion);
  t.equal(codeOf(await runPlugin(env('ADD'), config({ cniVersion: undefined }), ask)), CniCode.InvalidConfig);
  t.equal(codeOf(await runPlugin(env('ADD'), config({ ipam: undefined }), ask)), CniCode.InvalidConfig, 'no ipam section');
  t.equal(codeOf(await runPlugin(env('ADD'), config({}, { type: 'host-local' }), ask)), CniCode.InvalidConfig);
  t.equal(codeOf(await runPlugin(env('ADD'), config({ name: '' }), ask)), CniCode.InvalidConfig, 'no network name');
  t.equal(codeOf(await runPlugin(env('ADD'), config({}, { socketPath: 'relative.sock' }), ask)), CniCode.InvalidConfig);
  t.equal(codeOf(await runPlugin(env('ADD'), config({}, { network: 'other' }), ask)), CniCode.InvalidConfig, 'a network without a lease');
  t.equal(codeOf(await runPlugin(env('ADD'), config({}, { socketPath: join(dir, 'nobody.sock') }), ask)), CniCode.TryAgainLater, 'daemon not running');
  const notReady = new CniService({ agent: 'a2', ...fresh() });
  t.equal(codeOf(await runPlugin(env('STATUS'), config({ cniVersion: '1.1.0' }), async (_p, r) => notReady.handle(JSON.stringify(r)))), 50, 'STATUS before a lease: plugin not available');
});

t.test('conflist: bridge on m-<network> chained with lashup-ipam, written only on change', async (t) => {
  t.match(conflist('dcos', 1420, '/run/lashup/cni.sock'), {
    cniVersion: '1.0.0',
    name: 'dcos',
    plugins: [{ type: 'bridge', bridge: 'm-dcos', isGateway: true, ipMasq: false, hairpinMode: true, mtu: 1420, ipam: { type: 'lashup-ipam', network: 'dcos' } }],
  });
  const d = join(dir, 'net.d');
  t.equal(writeConflist(d, 'dcos', 1420, '/s'), true);
  t.equal(writeConflist(d, 'dcos', 1420, '/s'), false, 'unchanged: not rewritten');
  t.equal(writeConflist(d, 'dcos', 1400, '/s'), true, 'a new MTU rewrites it');
  t.match(JSON.parse(readFileSync(join(d, 'dcos.conflist'), 'utf8')), { plugins: [{ mtu: 1400 }] });
  t.equal((conflist('dcos', 1420, '/s').plugins as Record<string, unknown>[])[0]?.['dns'], undefined, 'no resolver: no dns section');
  t.same(
    (conflist('dcos', 1420, '/s', ['9.0.1.1']).plugins as Record<string, unknown>[])[0]?.['dns'],
    { nameservers: ['9.0.1.1'] },
    "the resolver in the bridge plugin's own dns (Debian's bridge replaces the IPAM result's)",
  );
});

t.test('leases of containers whose namespace is gone are collected after a grace period', async (t) => {
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths });
  s.setRanges({ dcos: { subnet: '9.0.1.0/25', gateway: '9.0.1.1' } });
  s.handle(JSON.stringify({ op: 'add', network: 'dcos', containerId: 'gone', ifname: 'eth0', netns: '/run/netns/gone' }));
  s.handle(JSON.stringify({ op: 'add', network: 'dcos', containerId: 'alive', ifname: 'eth0', netns: '/run/netns/alive' }));
  s.handle(JSON.stringify({ op: 'add', network: 'dcos', containerId: 'unknown', ifname: 'eth0' }));
  const gone = (p: string): boolean => p === '/run/netns/gone';
  t.equal(s.sweep(gone, 60_000), 0, 'nothing within the grace period');
  t.equal(s.sweep(gone, 0), 1, 'past it, the lease of the vanished namespace goes');
  t.same(
    s.pool
      .list()
      .map((a) => a.containerId)
      .sort(),
    ['alive', 'unknown'],
    'live and netns-less leases stay',
  );
  t.equal(s.stats.gcCollected, 1);
  const reread = new CniService({ agent: 'a1', ...paths });
  t.equal(reread.pool.list().length, 2, 'the collection is on disk');
  t.equal(s.sweep(), 0, 'the default check looks at the file system (nothing is older than 5 minutes here)');
  s.startSweeping(1_000_000);
  await s.close();
});

t.test('the periodic sweep and lease stamps run on the injected clock', async (t) => {
  const scheduler = new Scheduler({ epochMs: 1_700_000_000_000 });
  const s = new CniService({ agent: 'a1', ...fresh(), clock: scheduler.clock() });
  s.setRanges({ dcos: { subnet: '9.0.1.0/25', gateway: '9.0.1.1' } });
  s.handle(JSON.stringify({ op: 'add', network: 'dcos', containerId: 'gone', ifname: 'eth0', netns: '/run/netns/lashup-test-never-existed' }));
  t.equal(s.pool.list()[0]?.sinceMs, 1_700_000_000_000, "the lease is stamped with the clock's wall time");
  s.startSweeping(60_000);
  scheduler.runFor(4 * 60_000);
  await Promise.resolve();
  t.equal(s.pool.list().length, 1, 'within the 5-minute grace period: kept, though its namespace is gone');
  scheduler.runFor(2 * 60_000);
  await new Promise((r) => setImmediate(r));
  t.equal(s.pool.list().length, 0, 'a sweep after the grace period collected it');
  t.equal(s.stats.gcCollected, 1);
  await s.close();
});

t.test('the CNI socket is for root only, and a second service or a mistyped path takes nothing over', async (t) => {
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths });
  await s.listen();
  t.equal(statSync(paths.socketPath).mode & 0o777, 0o600, 'mode 0600 whatever the umask');
  const second = new CniService({ agent: 'a1', ...fresh(), socketPath: paths.socketPath });
  await t.rejects(second.listen(), { code: 'LASHUP_ERR_SOCKET_IN_USE', message: /in use/ }, 'a live socket is not taken over');
  await s.close();
  const file = `${paths.socketPath}.notasocket`;
  writeFileSync(file, 'keep');
  const wrong = new CniService({ agent: 'a1', ...fresh(), socketPath: file });
  await t.rejects(wrong.listen(), { code: 'LASHUP_ERR_SOCKET_IN_USE', message: /not a socket/ });
  t.equal(readFileSync(file, 'utf8'), 'keep', 'an ordinary file at the path is left alone');
});
