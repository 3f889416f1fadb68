/**
 * The dataplane on real kernels: two hosts on a switch namespace, each with a container
 * namespace on its bridges; a reconciler in each host (a worker process under `ip netns exec`)
 * programs the VTEP, bridges, routes, neighbours and FDB from a hand-written desired state; the
 * containers ping each other over VXLAN, IPv4 and IPv6; entries deleted by hand come back.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { ReconcilerStats } from '../../src/dataplane/index.js';
import { eventually, kernelTestSkip, must, run, TestNet, type TestHost } from '../helpers/netns.js';

const skip = await kernelTestSkip();
const workerPath = fileURLToPath(new URL('../helpers/dataplane-worker.ts', import.meta.url));

interface Worker {
  child: ChildProcessWithoutNullStreams;
  next(): Promise<Record<string, unknown>>;
  stats(): Promise<ReconcilerStats>;
  stop(): Promise<void>;
}

function startWorker(ns: string, self: number, remotes: number[], env: Record<string, string> = {}): Worker {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, workerPath, String(self), ...remotes.map(String)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const queue: Record<string, unknown>[] = [];
  const waiters: ((v: Record<string, unknown>) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter(value);
    else queue.push(value);
  });
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const queued = queue.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error(`worker in ${ns} did not answer within 20 s; stderr: ${stderr}`)), 20_000);
      waiters.push((v) => {
        clearTimeout(timer);
        resolve(v);
      });
    });
  return {
    child,
    next,
    async stats() {
      child.stdin.write('stats\n');
      return (await next())['stats'] as ReconcilerStats;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A container namespace for host i: eth0 on m-dcos (9.0.i.2/25), eth1 on m-dcos6 (fd01:b:0:0:i::2/81). */
async function addContainer(net: TestNet, host: TestHost, namespaces: string[]): Promise<string> {
  const i = host.index;
  const h = i.toString(16);
  const cns = `${net.id}-c${i}`;
  await must(['ip', 'netns', 'add', cns]);
  namespaces.push(cns);
  await must(['ip', '-n', cns, 'link', 'set', 'lo', 'up']);
  for (const [dev, bridge] of [
    ['eth0', 'm-dcos'],
    ['eth1', 'm-dcos6'],
  ] as const) {
    const hostEnd = `c${i}${dev}`;
    await must(['ip', '-n', host.ns, 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', dev, 'netns', cns]);
    await must(['ip', '-n', host.ns, 'link', 'set', hostEnd, 'master', bridge, 'up']);
    await must(['ip', '-n', cns, 'link', 'set', dev, 'up']);
  }
  await must(['ip', '-n', cns, 'addr', 'add', `9.0.${i}.2/25`, 'dev', 'eth0']);
  await must(['ip', '-n', cns, 'route', 'add', 'default', 'via', `9.0.${i}.1`]);
  await must(['ip', '-n', cns, '-6', 'addr', 'add', `fd01:b:0:0:${h}::2/81`, 'dev', 'eth1', 'nodad']);
  await must(['ip', '-n', cns, '-6', 'route', 'add', 'default', 'via', `fd01:b:0:0:${h}::1`]);
  return cns;
}

t.test('two hosts: containers ping over VXLAN (IPv4, IPv6); hand-deleted entries come back', { skip }, async (t) => {
  const net = await TestNet.create({ hosts: 2 });
  const containers: string[] = [];
  const workers: Worker[] = [];
  t.teardown(async () => {
    for (const w of workers) await w.stop();
    for (const ns of containers) await run(['ip', 'netns', 'del', ns]);
    await net.destroy();
  });
  const [h1, h2] = [net.host(1), net.host(2)];
  for (const h of [h1, h2]) {
    await must(['ip', 'netns', 'exec', h.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  }
  workers.push(startWorker(h1.ns, 1, [2]), startWorker(h2.ns, 2, [1]));
  for (const w of workers) {
    const first = await w.next();
    t.match(first, { ready: true, first: { converged: true, failed: 0 } }, 'the reconciler programmed its host');
  }
  // The IPv6 gateway of a bridge with no container yet (no carrier) is usable at once: added
  // without DAD, it is never "tentative" (it was, until a container came, and nothing could
  // bind it: the DNS server retried every second).
  const gateway6 = await must(['ip', '-n', h1.ns, '-6', 'addr', 'show', 'dev', 'm-dcos6', 'scope', 'global']);
  t.match(gateway6, /inet6 fd01:b::1:0:0:1\/81 /, `the IPv6 gateway is on the empty bridge: ${gateway6}`);
  t.notMatch(gateway6, /tentative/, 'and not tentative');
  const c1 = await addContainer(net, h1, containers);
  const c2 = await addContainer(net, h2, containers);

  const ping = (ns: string, ip: string): Promise<boolean> => eventually(() => net.ping(ns, ip, 1, 1), 15_000);
  t.ok(await ping(c1, '9.0.2.2'), 'container 1 reaches container 2 over IPv4');
  t.ok(await ping(c2, '9.0.1.2'), 'container 2 reaches container 1 over IPv4');
  t.ok(await ping(c1, 'fd01:b:0:0:2::2'), 'container 1 reaches container 2 over IPv6');
  t.ok(await ping(c2, 'fd01:b:0:0:1::2'), 'container 2 reaches container 1 over IPv6');

  const vtep = await must(['ip', '-n', h1.ns, '-d', 'link', 'show', 'vtep1024']);
  t.match(vtep, /vxlan id 1024 local 192\.0\.2\.1 .*dstport 64000 nolearning/, 'VTEP as specified, learning off');
  t.match(vtep, /alias lashup/);

  // Manual deletions on host 1 are restored through notifications.
  const before = await (workers[0] as Worker).stats();
  await must(['ip', '-n', h1.ns, 'route', 'del', '9.0.2.0/24']);
  await must(['ip', '-n', h1.ns, 'neigh', 'del', '44.128.0.2', 'dev', 'vtep1024']);
  await must(['bridge', '-n', h1.ns, 'fdb', 'del', '70:b3:d5:80:00:02', 'dev', 'vtep1024', 'dst', '192.0.2.2']);
  await must(['ip', '-n', h1.ns, '-6', 'route', 'del', 'fd01:b:0:0:2::/80']);
  const restored = await eventually(async () => {
    const routes = (await run(['ip', '-n', h1.ns, 'route', 'show', '9.0.2.0/24'])).stdout;
    const routes6 = (await run(['ip', '-n', h1.ns, '-6', 'route', 'show', 'fd01:b:0:0:2::/80'])).stdout;
    const neigh = (await run(['ip', '-n', h1.ns, 'neigh', 'show', '44.128.0.2', 'dev', 'vtep1024'])).stdout;
    const fdb = (await run(['bridge', '-n', h1.ns, 'fdb', 'show', 'dev', 'vtep1024'])).stdout;
    return /proto 76 onlink/.test(routes) && /proto 76/.test(routes6) && /PERMANENT/.test(neigh) && /70:b3:d5:80:00:02 dst 192\.0\.2\.2 self permanent/.test(fdb);
  }, 5000);
  t.ok(restored, 'route, IPv6 route, neighbour and FDB entry restored within the notification window');
  const after = await (workers[0] as Worker).stats();
  t.ok(after.driftCorrected >= before.driftCorrected + 4, `drift corrected: ${after.driftCorrected - before.driftCorrected} operations`);
  t.ok(await ping(c1, '9.0.2.2'), 'traffic flows again');

  // A foreign route is never touched; the containers' veths on lashup's bridges are left alone.
  await must(['ip', '-n', h1.ns, 'route', 'add', '10.99.0.0/16', 'via', '192.0.2.2']);
  await (workers[0] as Worker).child.stdin.write('resync\n');
  await (workers[0] as Worker).next();
  t.ok(await eventually(async () => (await (workers[0] as Worker).stats()).converged, 5000));
  t.match((await run(['ip', '-n', h1.ns, 'route', 'show', '10.99.0.0/16'])).stdout, /via 192\.0\.2\.2/, 'foreign route intact after a resync');
  t.match((await run(['ip', '-n', h1.ns, 'link', 'show', 'c1eth0'])).stdout, /master m-dcos/, 'container veth still enslaved');
});

t.test('a restarted reconciler over programmed state changes nothing; a VTEP downed by hand comes back with its routes', { skip }, async (t) => {
  const net = await TestNet.create({ hosts: 1 });
  const workers: Worker[] = [];
  t.teardown(async () => {
    for (const w of workers) await w.stop();
    await net.destroy();
  });
  const h1 = net.host(1);
  const first = startWorker(h1.ns, 1, [2, 3]);
  workers.push(first);
  t.match(await first.next(), { ready: true, first: { converged: true, failed: 0 } });
  await first.stop();
  const second = startWorker(h1.ns, 1, [2, 3], { LASHUP_TEST_RESYNC_MS: '500' });
  workers.push(second);
  const ready = (await second.next()) as { first: { ops: number; converged: boolean } };
  t.equal(ready.first.ops, 0, 'a restart over a programmed host sends no operation');
  t.ok(ready.first.converged);
  // Down the VTEP: IPv4 drops its routes silently; the reconciler brings the link up and the routes back.
  await must(['ip', '-n', h1.ns, 'link', 'set', 'vtep1024', 'down']);
  const back = await eventually(async () => {
    const link = (await run(['ip', '-n', h1.ns, 'link', 'show', 'vtep1024'])).stdout;
    const routes = (await run(['ip', '-n', h1.ns, 'route', 'show', 'proto', '76'])).stdout.trim().split('\n').filter(Boolean);
    return /[<,]UP[,>]/.test(link) && routes.length === 2;
  }, 5000);
  t.ok(back, 'VTEP up again with both IPv4 routes');

  // The notification helper dies (as it would on a socket overflow): a resync, then a new helper.
  second.child.stdin.write('kill-helper\n');
  await second.next();
  t.ok(await eventually(async () => (await second.stats()).notificationLosses >= 1, 5000), 'the helper death counts as lost notifications');
  t.ok(
    await eventually(async () => {
      second.child.stdin.write('stats\n');
      return ((await second.next())['helperStarts'] as number) >= 2;
    }, 5000),
    'a new helper is started',
  );
  await must(['ip', '-n', h1.ns, 'neigh', 'del', '44.128.0.3', 'dev', 'vtep1024']);
  t.ok(await eventually(async () => /PERMANENT/.test((await run(['ip', '-n', h1.ns, 'neigh', 'show', '44.128.0.3', 'dev', 'vtep1024'])).stdout), 5000), 'the new helper reports drift');
});
