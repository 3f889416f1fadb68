/**
 * The daemon shell's component contract: a start failure in any component, injected before it
 * starts or raised inside it, leaves no socket bound and no child process running, and the
 * error names the component.
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FakeKernel } from '../../src/dataplane/index.js';
import { ComponentStartError, Daemon, parseConfig, type DaemonConfig } from '../../src/daemon/index.js';
import { generateClusterKey } from '../../src/net/index.js';
import { FakeNft } from '../../src/testing/index.js';
import { freePort } from '../helpers/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-components-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const key = generateClusterKey();

async function tcpFree(port: number): Promise<boolean> {
  const server: Server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function udpFree(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** Child processes of this process (the netlink helper would be one). */
function children(): number {
  try {
    return (
      execFileSync('ps', ['-o', 'pid=', '--ppid', String(process.pid)], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.trim().length > 0).length - 1
    ); // ps itself
  } catch {
    return 0;
  }
}

async function config(name: string, role: 'master' | 'agent'): Promise<{ config: DaemonConfig; tcp: number[]; udp: number[] }> {
  const [udpPort, libp2pPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  mkdirSync(join(dir, name), { recursive: true });
  const c = parseConfig({
    name,
    role,
    underlayIp: '127.0.0.1',
    dataDir: join(dir, name, 'data'),
    masters: role === 'master' ? [name] : ['m1'],
    cluster: { keys: [key], label: 'components-test' },
    listen: { bindHost: '127.0.0.1', advertiseHost: '127.0.0.1', udpPort, libp2pPort },
    membership: { profile: 'local' },
    api: { host: '127.0.0.1', port: apiPort, socketPath: join(dir, name, 'api.sock') },
    cni: { socketPath: join(dir, name, 'cni.sock'), confDir: join(dir, name, 'net.d') },
    docker: { socketPath: join(dir, name, 'docker.sock') },
    dns: { port: 0, upstreams: ['127.0.0.1:9'] },
  });
  return { config: c, tcp: [libp2pPort, apiPort], udp: [udpPort] };
}

async function assertReleased(
  t: { ok(v: unknown, m: string): void; notOk(v: unknown, m: string): void; equal(a: unknown, b: unknown, m: string): void },
  c: { config: DaemonConfig; tcp: number[]; udp: number[] },
  childrenBefore: number,
): Promise<void> {
  for (const port of c.tcp) t.ok(await tcpFree(port), `TCP ${port} is free again`);
  for (const port of c.udp) t.ok(await udpFree(port), `UDP ${port} is free again`);
  t.notOk(existsSync(c.config.cni.socketPath), 'no CNI socket left');
  t.notOk(existsSync(c.config.api.socketPath), 'no API socket left');
  t.equal(children(), childrenBefore, 'no child process left');
}

const AGENT = ['node', 'dataplane', 'overlay', 'firewall', 'cni', 'conflists', 'docker', 'dns', 'vips', 'api'];
const MASTER = ['node', 'dns', 'vips', 'api'];

for (const [role, names] of [
  ['agent', AGENT],
  ['master', MASTER],
] as const) {
  t.test(`${role}: a start failure injected into each component in turn`, async (t) => {
    const childrenBefore = children();
    let i = 0;
    for (const failing of names) {
      const c = await config(`${role}-${i++}`, role === 'agent' ? 'agent' : 'master');
      const started: string[] = [];
      const error = await Daemon.start(c.config, {
        kernel: new FakeKernel(),
        firewall: new FakeNft(),
        beforeStart: (name) => {
          started.push(name);
          if (name === failing) throw new Error(`injected failure in ${name}`);
        },
      }).then(
        (d) => d,
        (err: unknown) => err,
      );
      if (error instanceof Daemon) {
        await error.stop(false);
        t.fail(`the daemon started despite a failure in ${failing}`);
        continue;
      }
      t.type(error, ComponentStartError, failing);
      t.match(error, { code: 'LASHUP_ERR_COMPONENT_START', component: failing, message: new RegExp(`^${failing} could not start: injected failure`) });
      t.same(started, names.slice(0, names.indexOf(failing) + 1), `components before ${failing} started, none after`);
      await assertReleased(t, c, childrenBefore);
    }
  });
}

t.test('failures inside a component: the store cannot open, the API port is taken', async (t) => {
  const childrenBefore = children();
  const broken = await config('broken-store', 'agent');
  // The store's directory is a file: the node's store fails after libp2p and UDP are bound.
  mkdirSync(broken.config.dataDir, { recursive: true });
  writeFileSync(join(broken.config.dataDir, 'kv'), 'not a directory');
  await t.rejects(Daemon.start(broken.config, { kernel: new FakeKernel(), firewall: new FakeNft() }), { code: 'LASHUP_ERR_COMPONENT_START', component: 'node' });
  await assertReleased(t, broken, childrenBefore);

  // Raft storage is corrupt: the node fails after the store opened (and libp2p and UDP bound).
  const corrupt = await config('m-corrupt', 'master');
  mkdirSync(join(corrupt.config.dataDir, 'raft'), { recursive: true });
  writeFileSync(join(corrupt.config.dataDir, 'raft', 'raft-state'), 'not a raft record');
  await t.rejects(Daemon.start(corrupt.config, { firewall: false }), { code: 'LASHUP_ERR_COMPONENT_START', component: 'node', message: /raft/i }, 'corrupt Raft storage fails the node, named');
  await assertReleased(t, corrupt, childrenBefore);

  const taken = await config('taken-api', 'agent');
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(taken.config.api.port, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)));
  const nft = new FakeNft();
  await t.rejects(Daemon.start(taken.config, { kernel: new FakeKernel(), firewall: nft }), { code: 'LASHUP_ERR_COMPONENT_START', component: 'api', message: /EADDRINUSE/ });
  for (const port of [...taken.tcp.filter((p) => p !== taken.config.api.port)]) t.ok(await tcpFree(port), `TCP ${port} is free again`);
  for (const port of taken.udp) t.ok(await udpFree(port), `UDP ${port} is free again`);
  t.notOk(existsSync(taken.config.cni.socketPath), 'no CNI socket left');
  t.equal(children(), childrenBefore);
  t.ok(nft.tables.size > 0, 'a failed start is not a leave: the firewall tables stay for the next start to adopt');
});
