import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DockerEngine,
  DockerErrorCode,
  DockerNetworkKeeper,
  desiredDockerNetworks,
  dockerHalfCapacity,
  dockerNetworkDifferences,
  dockerNetworkSpec,
  dockerTasks,
  FRAMEWORK_LABEL,
  TASK_LABEL,
  VIPS_LABEL,
  type DockerTask,
  type DockerUsage,
} from '../../../src/docker/index.js';
import type { Lease } from '../../../src/ipam/index.js';
import { Scheduler } from '../../../src/sim/index.js';
import { FakeEngine } from '../../helpers/fake-docker-engine.js';

/** `promise`, or a rejection naming `what` after 5 s: awaiting an event, never waiting for time. */
function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within 5 s`)), 5000);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

const lease: Lease = {
  agent: 'a1',
  vtepIp: '44.128.0.1',
  vtepMac: '70:b3:d5:80:00:01',
  networks: {
    dcos: { subnet: '9.0.0.0/24', mesos: '9.0.0.0/25', docker: '9.0.0.128/25', mesosGateway: '9.0.0.1', dockerGateway: '9.0.0.129' },
    dcos6: { subnet6: 'fd01:b::/80', mesos6: 'fd01:b::/81', docker6: 'fd01:b::8000:0:0/81', mesosGateway6: 'fd01:b::1', dockerGateway6: 'fd01:b::8000:0:1' },
  },
};

async function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-docker-'));
  const engine = new FakeEngine(join(dir, 'docker.sock'));
  await engine.listen();
  const scheduler = new Scheduler({ epochMs: 0 });
  const usage: [string, DockerUsage][] = [];
  const api = new DockerEngine({ socketPath: engine.socketPath, timeoutMs: 500 });
  const keeper = new DockerNetworkKeeper({ api, clock: scheduler.clock(), agent: 'a1', resyncIntervalMs: 10_000, onUsage: (n, u) => usage.push([n, u]) });
  t.teardown(async () => {
    keeper.stop();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { engine, keeper, api, usage, dir };
}

t.test('the lease makes one Docker network per overlay network: bridge d-<network>, the Docker half, masquerade off, the MTU, lashup label', async (t) => {
  const desired = desiredDockerNetworks(lease, 1420);
  t.same(
    desired.map((d) => [d.name, d.bridge, d.subnet, d.gateway, d.subnet6, d.gateway6]),
    [
      ['dcos', 'd-dcos', '9.0.0.128/25', '9.0.0.129', undefined, undefined],
      ['dcos6', 'd-dcos6', undefined, undefined, 'fd01:b::8000:0:0/81', 'fd01:b::8000:0:1'],
    ],
  );
  const spec = dockerNetworkSpec(desired[0] as (typeof desired)[0], 'a1');
  t.match(spec, {
    Name: 'dcos',
    Driver: 'bridge',
    EnableIPv6: false,
    IPAM: { Config: [{ Subnet: '9.0.0.128/25', Gateway: '9.0.0.129' }] },
    Options: { 'com.docker.network.bridge.name': 'd-dcos', 'com.docker.network.bridge.enable_ip_masquerade': 'false', 'com.docker.network.driver.mtu': '1420' },
    Labels: { 'io.lashup.network': 'a1' },
  });
  t.equal(dockerHalfCapacity('9.0.0.128/25'), 125, 'a /25 gives 125 container addresses');
  t.equal(dockerHalfCapacity('garbage'), 0);
  const created = { ...spec, Id: 'x', IPAM: { Config: [{ Subnet: '9.0.0.128/25', Gateway: '9.0.0.129' }] } };
  t.same(dockerNetworkDifferences(created, desired[0] as (typeof desired)[0]), [], 'a network made from the spec is as desired');
  t.match(dockerNetworkDifferences({ ...created, Options: { ...spec.Options, 'com.docker.network.driver.mtu': '1500' } }, desired[0] as (typeof desired)[0]), ['MTU 1500, not 1420']);
  t.match(dockerNetworkDifferences({ ...created, Driver: 'macvlan', IPAM: { Config: [] } }, desired[0] as (typeof desired)[0]), ['driver macvlan, not bridge', /subnets none, not 9\.0\.0\.128\/25/]);
});

t.test('level-triggered: created, repaired after a hand-made change, kept while containers are attached, removed with the lease', async (t) => {
  const { engine, keeper, usage } = await setup(t);
  await keeper.setDesired(desiredDockerNetworks(lease, 1420));
  t.same([...engine.networks.values()].map((n) => n.Name).sort(), ['dcos', 'dcos6'], 'both networks created');
  t.equal(keeper.stats.created, 2);
  t.ok(keeper.stats.reachable);
  t.same(usage.find(([n]) => n === 'dcos')?.[1], { used: 0, total: 125 }, 'usage read after creation');
  t.equal(keeper.stats.capacity['dcos'], 125, 'and in the stats');

  // Deleted by hand: made again at the next resync.
  engine.networks.delete((engine.byName('dcos') as { Id: string }).Id);
  await keeper.kick();
  t.ok(engine.byName('dcos'), 'a deleted network is made again');
  // Changed by hand (another MTU) with no container: recreated.
  (engine.byName('dcos') as { Options: Record<string, string> }).Options['com.docker.network.driver.mtu'] = '1500';
  await keeper.kick();
  t.equal(engine.byName('dcos')?.Options?.['com.docker.network.driver.mtu'], '1420', 'a changed network without containers is recreated');
  t.equal(keeper.stats.recreated, 1);
  // Changed with a container attached: reported, not touched.
  engine.attach('dcos', 'c1');
  (engine.byName('dcos') as { Options: Record<string, string> }).Options['com.docker.network.driver.mtu'] = '1500';
  await keeper.kick();
  t.match(keeper.conflicts, [{ network: 'dcos', kind: 'in-use', detail: /MTU 1500, not 1420.*1 container/ }], 'a changed network with containers is a conflict');
  engine.attach('dcos6', 'c6');
  await keeper.kick();
  t.equal(keeper.stats.used['dcos6'], 1, 'containers attached are counted as used');
  (engine.byName('dcos6') as { Containers: Record<string, unknown> }).Containers = {};
  t.equal(engine.byName('dcos')?.Options?.['com.docker.network.driver.mtu'], '1500', 'and is left alone');
  t.equal(keeper.stats.conflicts, 1);

  // The lease is gone (released): lashup's networks go, except one still in use.
  await keeper.setDesired([]);
  t.equal(engine.byName('dcos6'), undefined, 'a network the lease no longer covers is removed');
  t.ok(engine.byName('dcos'), 'unless containers are attached');
  t.match(keeper.conflicts, [{ network: 'dcos', kind: 'stale-in-use' }]);
  t.equal(keeper.stats.removed, 1);
});

t.test('a foreign network of the same name is reported and never touched', async (t) => {
  const { engine, keeper } = await setup(t);
  const id = engine.add({ Name: 'dcos', Driver: 'bridge', EnableIPv6: false, IPAM: { Config: [{ Subnet: '172.30.0.0/16' }] }, Options: {}, Labels: {} });
  await keeper.setDesired(desiredDockerNetworks(lease, 1420));
  t.match(keeper.conflicts, [{ network: 'dcos', kind: 'foreign', detail: /was not created by lashup/ }]);
  t.equal(engine.networks.get(id)?.IPAM.Config?.[0]?.Subnet, '172.30.0.0/16', 'the foreign network is untouched');
  t.ok(engine.byName('dcos6'), 'the other network is still made');
  await keeper.setDesired([]);
  t.ok(engine.networks.has(id), 'and not removed when the lease goes');
});

t.test('no daemon, a hung daemon, a daemon that appears later: nothing blocks, each state counted', async (t) => {
  const { engine, keeper, api, dir } = await setup(t);
  engine.hang = true;
  await t.rejects(api.ping(), { code: DockerErrorCode.Timeout }, 'a hung daemon times out');
  await keeper.setDesired(desiredDockerNetworks(lease, 1420));
  t.notOk(keeper.stats.reachable, 'unreachable while it hangs');
  t.equal(keeper.stats.unreachable, 1, 'and counted');
  await t.rejects(new DockerEngine({ socketPath: join(dir, 'none.sock'), timeoutMs: 500 }).listNetworks(), { code: DockerErrorCode.Unreachable }, 'no socket: unreachable');
  engine.hang = false;
  await keeper.kick();
  t.ok(keeper.stats.reachable, 'picked up once it answers');
  t.equal(engine.networks.size, 2);
  await t.rejects(api.inspectNetwork('missing'), { code: DockerErrorCode.Api, details: { status: 404 } }, 'an API error carries its status');
});

t.test('tasks from labelled containers on lashup networks, refreshed by the daemon events; bad labels reported, never hiding the others', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-docker-'));
  const engine = new FakeEngine(join(dir, 'docker.sock'));
  await engine.listen();
  const scheduler = new Scheduler({ epochMs: 0 });
  const seen: DockerTask[][] = [];
  const tasksWaiters: (() => void)[] = [];
  /** The next report of tasks (every sync that reads the containers makes one), bounded. */
  const nextTasks = (what: string): Promise<void> => bounded(new Promise((resolve) => tasksWaiters.push(resolve)), what);
  const keeper = new DockerNetworkKeeper({
    api: new DockerEngine({ socketPath: engine.socketPath, timeoutMs: 500 }),
    clock: scheduler.clock(),
    agent: 'a1',
    resyncIntervalMs: 3_600_000,
    onTasks: (tasks) => {
      seen.push(tasks);
      for (const resolve of tasksWaiters.splice(0)) resolve();
    },
  });
  t.teardown(async () => {
    keeper.stop();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const container = (id: string, labels: Record<string, string>, networks: Record<string, { IPAddress?: string; GlobalIPv6Address?: string }>) =>
    engine.containers.push({ Id: id.padEnd(64, '0'), Labels: labels, NetworkSettings: { Networks: networks } });
  container('aaa', { [TASK_LABEL]: 'web', [FRAMEWORK_LABEL]: 'shop' }, { dcos: { IPAddress: '9.0.0.130' }, dcos6: { GlobalIPv6Address: 'fd01:b::8000:0:2' }, bridge: { IPAddress: '172.17.0.2' } });
  container('bbb', { [TASK_LABEL]: 'db' }, { dcos: { IPAddress: '9.0.0.131' } });
  container('ccc', { [TASK_LABEL]: 'x y', [FRAMEWORK_LABEL]: 'shop' }, { dcos: { IPAddress: '9.0.0.132' } });
  container('ddd', { [TASK_LABEL]: 'other', [FRAMEWORK_LABEL]: 'shop' }, { bridge: { IPAddress: '172.17.0.3' } });
  await keeper.setDesired(desiredDockerNetworks(lease, 1420));
  t.same(
    seen.at(-1),
    [{ framework: 'shop', task: 'web', ips: ['9.0.0.130', 'fd01:b::8000:0:2'], containerId: 'aaa000000000' }],
    "only lashup networks' addresses; a container on none of them has no task; bad labels left out",
  );
  t.equal(keeper.stats.tasks, 1);
  t.equal(keeper.stats.badLabels, 2, 'a missing framework and a task with a space');
  t.same(
    dockerTasks(
      engine.containers.map((c) => ({ Id: c.Id, Names: [], Labels: c.Labels, Networks: c.NetworkSettings.Networks })),
      new Set(['dcos']),
    ).refused.map((r) => [r.label, r.value]),
    [
      [FRAMEWORK_LABEL, undefined],
      [TASK_LABEL, 'x y'],
    ],
  );

  // A container starts: the event, not a resync (an hour away), brings its task.
  await bounded(engine.streamOpened(), 'the keeper follows the events');
  container('eee', { [TASK_LABEL]: 'web', [FRAMEWORK_LABEL]: 'shop' }, { dcos: { IPAddress: '9.0.0.133' } });
  const started = nextTasks('the start event starts a sync');
  engine.emit({ Type: 'container', Action: 'exec_start' });
  engine.emit({ Type: 'container', Action: 'start', Actor: { ID: 'eee' } });
  await started;
  t.equal(seen.at(-1)?.length, 2, 'the started container is a task');
  t.equal(keeper.stats.events, 1, 'the exec_start event is not one that changes addresses');
  // The daemon restarts: the stream ends and is opened again at the next sync.
  engine.endStreams();
  await keeper.kick();
  await bounded(engine.streamOpened(), 'the stream is opened again');
  const disconnected = nextTasks('a disconnect starts a sync');
  engine.emit({ Type: 'network', Action: 'disconnect' });
  await disconnected;
  t.equal(keeper.stats.events, 2);
  // Lines that are not events are counted and skipped; the stream goes on.
  const afterJunk = nextTasks('an event after junk lines still starts a sync');
  engine.emitRaw('not json');
  engine.emitRaw('42');
  engine.emit({ Type: 'container', Action: 'die' });
  await afterJunk;
  t.equal(keeper.stats.badEvents, 2, 'two bad lines counted');
  t.equal(keeper.stats.events, 3);

  // Listing the containers fails: one failure counted for the sync, the last tasks kept.
  engine.failContainers = true;
  const failures = keeper.stats.syncFailures;
  const reported = seen.length;
  await keeper.kick();
  t.equal(keeper.stats.syncFailures, failures + 1, 'counted once');
  t.equal(seen.length, reported, 'no tasks reported from a failed listing (the last ones stand)');
  engine.failContainers = false;
  await keeper.kick();
  t.equal(seen.at(-1)?.length, 2, 'the next sync reports them again');
});

t.test('Docker containers declare VIPs with the lashup.vips label; a bad one is refused, the task and its other VIPs stay', async (t) => {
  const labels = { [TASK_LABEL]: 'web', [FRAMEWORK_LABEL]: 'shop', [VIPS_LABEL]: '/web:80:8080, /web:99999 ,1.2.3.4:53/udp' };
  const r = dockerTasks([{ Id: 'f'.repeat(64), Names: [], Labels: labels, Networks: { dcos: { IPAddress: '9.0.0.130' } } }], new Set(['dcos']));
  t.same(r.tasks, [{ framework: 'shop', task: 'web', ips: ['9.0.0.130'], containerId: 'ffffffffffff', vips: ['/web:80:8080', '1.2.3.4:53/udp'] }]);
  t.same(
    r.refused.map((x) => [x.label, x.value]),
    [[VIPS_LABEL, '/web:99999']],
  );
  t.match(r.refused[0]?.message, /port "99999" is not valid/);
  const many = dockerTasks(
    [{ Id: 'e'.repeat(64), Names: [], Labels: { ...labels, [VIPS_LABEL]: Array.from({ length: 20 }, (_, i) => `/v${i}:80`).join(',') }, Networks: { dcos: { IPAddress: '9.0.0.131' } } }],
    new Set(['dcos']),
  );
  t.equal(many.tasks[0]?.vips?.length, 16, 'at most 16 VIPs per task');
  t.match(many.refused, [{ label: VIPS_LABEL, message: /declares 20 VIPs; at most 16/ }]);
});
