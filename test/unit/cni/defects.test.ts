/**
 * Regressions of the hostile-input and crash probe (issue 14) on the CNI path: each subtest
 * names the item it guards and failed on the code before the fix.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { askSocket, CniCode, CniService, ConflistKeeper, MAX_REQUEST_BYTES, runPlugin } from '../../../src/cni/index.js';
import { eventually } from '../../helpers/netns.js';
import { MemoryFs } from '../../../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-cni-defects-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): { socketPath: string; leasesPath: string } => {
  n++;
  return { socketPath: join(dir, `s${n}.sock`), leasesPath: join(dir, `d${n}`, 'leases.json') };
};
const RANGE = { dcos: { subnet: '9.0.1.0/25', gateway: '9.0.1.1' } };
const call = (s: CniService, req: unknown): Record<string, unknown> => s.handle(JSON.stringify(req));
const add = (s: CniService, containerId: string, netns?: string): Record<string, unknown> =>
  call(s, { op: 'add', network: 'dcos', containerId, ifname: 'eth0', ...(netns === undefined ? {} : { netns }) });
const addressOf = (reply: Record<string, unknown>): string | undefined => (reply['attachment'] as { address?: string } | undefined)?.address;

t.test('item 1: a GC without a well-formed valid-attachments list deletes nothing', async (t) => {
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths });
  s.setRanges(RANGE);
  await s.listen();
  t.teardown(() => s.close());
  for (const id of ['c1', 'c2', 'c3']) add(s, id);
  const config = (over: Record<string, unknown>): string => JSON.stringify({ cniVersion: '1.1.0', name: 'dcos', type: 'bridge', ipam: { type: 'lashup-ipam', socketPath: paths.socketPath }, ...over });
  const env = { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' };
  const refused = async (over: Record<string, unknown>, code: number, msg: RegExp, what: string): Promise<void> => {
    const out = await runPlugin(env, config(over), askSocket);
    t.equal(out.code, 1, `${what}: non-zero exit`);
    t.match(JSON.parse(out.stdout), { code, msg }, what);
    t.equal(s.pool.used('dcos'), 3, `${what}: every lease is still there`);
  };
  await refused({ cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] }, CniCode.IncompatibleVersion, /GC exists from CNI 1\.1\.0; .*"1\.0\.0"/, 'GC under CNI 1.0.0');
  await refused({}, CniCode.InvalidConfig, /cni\.dev\/valid-attachments = \(missing\) is not valid/, 'GC without the list');
  await refused({ 'cni.dev/valid-attachments': 'all' }, CniCode.InvalidConfig, /cni\.dev\/valid-attachments = "all" is not valid/, 'GC with a string');
  await refused({ 'cni.dev/valid-attachments': [{ containerID: 'c1' }] }, CniCode.InvalidConfig, /valid-attachments\[0\]/, 'GC with an entry lacking ifname');
  // The daemon refuses the same on its socket (defence in depth: another client, an old plugin).
  for (const valid of [undefined, 'all', [{ containerId: 'c1' }], [null]]) {
    t.match(
      call(s, { op: 'gc', network: 'dcos', valid }),
      { ok: false, error: { code: 'LASHUP_ERR_CNI_BAD_REQUEST', cniCode: CniCode.InvalidConfig } },
      `daemon: gc with valid = ${JSON.stringify(valid)} refused`,
    );
  }
  t.equal(s.pool.used('dcos'), 3, 'nothing was deleted');
  const ok = await runPlugin(env, config({ 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }] }), askSocket);
  t.equal(ok.code, 0, 'a well-formed GC under 1.1.0 runs');
  t.same(
    s.pool.list().map((a) => a.containerId),
    ['c1'],
    'and keeps exactly the valid attachment',
  );
});

t.test('item 2: an ADD whose lease write failed is not answered from memory on retry', async (t) => {
  const fs = new MemoryFs();
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths, fs });
  s.setRanges(RANGE);
  fs.failAllWrites = 'ENOSPC';
  const failed = add(s, 'c1');
  t.match(
    failed,
    { ok: false, error: { code: 'LASHUP_ERR_CNI_PERSIST_FAILED', cniCode: CniCode.IoFailure, message: /cannot be written .*ENOSPC.*nothing was changed/ } },
    'ADD refused with an I/O error',
  );
  t.equal(s.pool.used('dcos'), 0, 'and rolled back in memory');
  t.match(add(s, 'c1'), { ok: false, error: { code: 'LASHUP_ERR_CNI_PERSIST_FAILED' } }, 'the retry tries to write again, and fails again');
  fs.failAllWrites = undefined;
  const retried = add(s, 'c1');
  t.equal(addressOf(retried), '9.0.1.2', 'once the disk works the retry succeeds');
  fs.kill();
  const restarted = new CniService({ agent: 'a1', ...paths, fs });
  restarted.setRanges(RANGE);
  t.same(
    restarted.pool.list().map((a) => `${a.containerId} ${a.address}`),
    ['c1 9.0.1.2'],
    'after a kill and restart the container is known',
  );
  t.equal(addressOf(add(restarted, 'c2')), '9.0.1.3', 'and its address is not handed out again');
  t.equal(s.stats.persistFailures, 2);

  // DEL, GC and the sweep roll back too: a refused DEL must not come back after a restart as a
  // success the runtime no longer retries.
  fs.failAllWrites = 'EIO';
  t.match(call(restarted, { op: 'del', network: 'dcos', containerId: 'c1', ifname: 'eth0' }), { ok: false, error: { code: 'LASHUP_ERR_CNI_PERSIST_FAILED' } });
  t.equal(restarted.pool.used('dcos'), 2, 'the refused DEL left the lease in place');
  t.match(call(restarted, { op: 'gc', network: 'dcos', valid: [] }), { ok: false, error: { code: 'LASHUP_ERR_CNI_PERSIST_FAILED' } });
  t.equal(restarted.pool.used('dcos'), 2, 'the refused GC left every lease in place');
  fs.failAllWrites = undefined;
  t.match(call(restarted, { op: 'del', network: 'dcos', containerId: 'c1', ifname: 'eth0' }), { ok: true }, 'the retried DEL writes');
  fs.kill();
  t.same(
    new CniService({ agent: 'a1', ...paths, fs }).pool.list().map((a) => a.containerId),
    ['c2'],
    'and stays deleted after a restart',
  );
});

t.test('item 2 on the real file system: the retry after a failed write is durable', async (t) => {
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths });
  s.setRanges(RANGE);
  add(s, 'first');
  // The temp file's path taken by a directory: the write fails with EISDIR, as root too.
  mkdirSync(`${paths.leasesPath}.tmp`);
  t.match(add(s, 'c1'), { ok: false, error: { cniCode: CniCode.IoFailure } }, 'the ADD fails');
  rmdirSync(`${paths.leasesPath}.tmp`);
  const retry = add(s, 'c1');
  t.equal(addressOf(retry), '9.0.1.3');
  const onDisk = JSON.parse(readFileSync(paths.leasesPath, 'utf8')) as { attachments: { containerId: string }[] };
  t.same(onDisk.attachments.map((a) => a.containerId).sort(), ['c1', 'first'], 'the retried ADD is on disk');
});

t.test('item 6: a lease whose namespace cannot be examined is kept; only ENOENT is gone', async (t) => {
  const logged: unknown[] = [];
  const logger = { warn: (o: unknown) => logged.push(o), info: () => undefined, error: () => undefined, debug: () => undefined } as never;
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths, logger });
  s.setRanges(RANGE);
  const loop = join(dir, 'loop');
  symlinkSync(loop, loop); // stat fails with ELOOP: not "does not exist"
  const missing = join(dir, 'no-such-netns');
  const present = join(dir, 'present-netns');
  writeFileSync(present, '');
  add(s, 'unexaminable', loop);
  add(s, 'vanished', missing);
  add(s, 'running', present);
  t.equal(s.sweep(undefined, 0), 1, 'one lease collected');
  t.same(
    s.pool
      .list()
      .map((a) => a.containerId)
      .sort(),
    ['running', 'unexaminable'],
    'only the ENOENT one went',
  );
  t.equal(s.sweep(undefined, 0), 0);
  t.equal(logged.length, 1, 'the unexaminable namespace is logged once, not per sweep');
  t.ok(s.stats.sweepUncertain >= 2, 'and counted per sweep');
  t.equal(s.netnsGone('/proc/self/ns/net'), false, "the daemon's own namespace is present");
});

t.test('item 7: malformed requests on the socket, several per write, one oversize', async (t) => {
  const paths = fresh();
  const s = new CniService({ agent: 'a1', ...paths });
  s.setRanges(RANGE);
  await s.listen();
  t.teardown(() => s.close());
  t.match(
    s.handle('null'),
    { ok: false, error: { code: 'LASHUP_ERR_CNI_BAD_REQUEST', cniCode: CniCode.DecodeFailure, message: /null is not a JSON object/ } },
    'a null request is a decode failure, not an internal error',
  );
  t.match(s.handle('[1,2]'), { ok: false, error: { cniCode: CniCode.DecodeFailure } });
  const exchange = (payload: string): Promise<string[]> =>
    new Promise((resolve, reject) => {
      const socket = connect(paths.socketPath);
      let text = '';
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.end(payload));
      socket.on('data', (c: string) => (text += c));
      socket.on('error', reject);
      socket.on('close', () => resolve(text.split('\n').filter((l) => l !== '')));
    });
  const two = await exchange(
    `${JSON.stringify({ op: 'add', network: 'dcos', containerId: 'x1', ifname: 'eth0' })}\n${JSON.stringify({ op: 'add', network: 'dcos', containerId: 'x2', ifname: 'eth0' })}\n`,
  );
  t.equal(two.length, 2, 'two requests in one write get two answers');
  t.same(
    two.map((l) => addressOf(JSON.parse(l) as Record<string, unknown>)),
    ['9.0.1.2', '9.0.1.3'],
    'in order',
  );
  const before = s.stats.badRequests;
  const big = await exchange(`${'x'.repeat(MAX_REQUEST_BYTES + 10)}\n${'y'.repeat(MAX_REQUEST_BYTES)}\n`);
  t.equal(big.length, 1, 'an oversize request gets one refusal');
  t.match(JSON.parse(big[0] as string), { ok: false, error: { cniCode: CniCode.DecodeFailure, message: /longer than/ } });
  t.equal(s.stats.badRequests - before, 1, 'and is counted once');
});

t.test('item 7: the plugin validates its environment and the version of STATUS', async (t) => {
  const never = (): Promise<Record<string, unknown>> => Promise.reject(new Error('must not be asked'));
  const config = (over: Record<string, unknown> = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'dcos', ipam: { type: 'lashup-ipam', socketPath: '/x.sock' }, ...over });
  const env = (over: Record<string, string>): Record<string, string> => ({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/c1', CNI_IFNAME: 'eth0', ...over });
  const result = async (e: Record<string, string>, stdin: string, bytes?: number): Promise<{ code: number; msg: string }> =>
    JSON.parse((await runPlugin(e, stdin, never, bytes)).stdout) as { code: number; msg: string };
  t.match(await result(env({ CNI_CONTAINERID: '../etc/passwd' }), config()), { code: CniCode.InvalidEnvironment, msg: /CNI_CONTAINERID = "\.\.\/etc\/passwd" is not valid/ });
  t.match(await result(env({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: '-x' }), config()), { code: CniCode.InvalidEnvironment });
  t.match(await result(env({ CNI_IFNAME: 'eth0/../x' }), config()), { code: CniCode.InvalidEnvironment, msg: /CNI_IFNAME/ });
  t.match(await result(env({ CNI_IFNAME: 'a-very-long-interface' }), config()), { code: CniCode.InvalidEnvironment, msg: /CNI_IFNAME/ });
  t.match(await result(env({}), 'null'), { code: CniCode.DecodeFailure, msg: /null is not an object/ });
  t.match(await result(env({ CNI_COMMAND: 'STATUS' }), config()), { code: CniCode.IncompatibleVersion, msg: /STATUS exists from CNI 1\.1\.0/ });
  t.match(await result(env({}), config(), 600 * 1024 * 1024), { code: CniCode.DecodeFailure, msg: /larger than/ }, 'an oversize configuration is a decode failure');
});

t.test('item 8: a requested address is refused, not silently ignored', async (t) => {
  const never = (): Promise<Record<string, unknown>> => Promise.reject(new Error('must not be asked'));
  const config = (over: Record<string, unknown> = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'dcos', ipam: { type: 'lashup-ipam', socketPath: '/x.sock' }, ...over });
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/c1', CNI_IFNAME: 'eth0' };
  for (const [what, e, stdin] of [
    ['CNI_ARGS IP (podman --ip)', { ...env, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=x;IP=9.0.1.9' }, config()],
    ['runtimeConfig.ips', env, config({ runtimeConfig: { ips: ['9.0.1.9/25'] } })],
    ['args.cni.ips', env, config({ args: { cni: { ips: ['9.0.1.9'] } } })],
  ] as const) {
    const out = await runPlugin(e, stdin, never);
    t.equal(out.code, 1, `${what}: refused`);
    t.match(JSON.parse(out.stdout), { code: CniCode.UnsupportedField, msg: /does not hand out requested addresses/, details: /LASHUP_ERR_CNI_ADDRESS_REQUESTED/ }, `${what}: says why`);
  }
  const plain = await runPlugin({ ...env, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=x' }, config(), async () => ({ ok: true, attachment: { address: '9.0.1.2', prefixLen: 25, gateway: '9.0.1.1' } }));
  t.equal(plain.code, 0, 'other CNI_ARGS pass');
});

t.test('item 8: conflists are level-triggered: restored after removal, foreign files untouched', async (t) => {
  const confDir = join(dir, 'net.d-keeper');
  const keeper = new ConflistKeeper({ dir: confDir, socketPath: '/run/lashup/cni.sock', mtu: 1420, checkIntervalMs: 200 });
  keeper.start();
  t.teardown(() => keeper.stop());
  keeper.setNetworks(['dcos']);
  const path = join(confDir, 'dcos.conflist');
  t.ok(existsSync(path), 'written at once');
  const original = readFileSync(path, 'utf8');
  writeFileSync(join(confDir, 'cni.lock'), '');
  writeFileSync(join(confDir, 'other.conflist'), '{"foreign": true}');
  rmSync(path);
  t.ok(await eventually(() => existsSync(path), 10_000), 'a removed conflist comes back');
  t.equal(readFileSync(path, 'utf8'), original, 'identical');
  writeFileSync(path, '{"edited": true}');
  t.ok(await eventually(() => readFileSync(path, 'utf8') === original, 10_000), 'an edited one is put back');
  t.ok(keeper.stats.restored >= 2, 'restorations are counted');
  t.equal(readFileSync(join(confDir, 'other.conflist'), 'utf8'), '{"foreign": true}', "another network's file is left alone");
  t.ok(existsSync(join(confDir, 'cni.lock')), "the runtime's lock file is left alone");
  rmSync(confDir, { recursive: true });
  t.ok(await eventually(() => existsSync(path), 10_000), 'even the directory is recreated');
  const writes = keeper.stats.writes;
  keeper.setNetworks(['dcos'], (network) => (network === 'dcos' ? ['9.0.1.1'] : []));
  t.match(JSON.parse(readFileSync(path, 'utf8')), { plugins: [{ dns: { nameservers: ['9.0.1.1'] } }] }, 'a resolver (the lease gateway) rewrites it');
  t.equal(keeper.stats.writes, writes + 1);
});
