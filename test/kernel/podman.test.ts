/**
 * A real CNI runtime (issue 14, item 8): Debian's podman 4.3, rootful, CNI backend, run as a user
 * would inside two agents' namespaces (`nsenter --net=...`, its own storage, runroot and
 * containers.conf naming the agent's conflist directory and lashup-ipam's directory), with an
 * image imported from busybox-static. Shown: containers on two agents get addresses from their
 * agents' Mesos halves and ping each other; `podman rm` frees the lease; the conflist that
 * `podman network rm` deletes is restored within seconds (podman's own cni.lock left alone);
 * `podman run --ip` is refused with an error that says why.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { cidrContains, parseAddress, parseCidr } from '../../src/common/index.js';
import { CNI_PLUGIN_DIR, NetnsCluster, type ClusterNode } from '../../src/demo/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, netnsRequired } from '../helpers/netns.js';

const missing = ['/usr/bin/podman', '/usr/bin/busybox', '/usr/sbin/runc', `${CNI_PLUGIN_DIR}/bridge`].filter((p) => !existsSync(p) && !(p === '/usr/sbin/runc' && existsSync('/usr/bin/runc')));
const kernelSkip = await kernelTestSkip();
if (kernelSkip === false && missing.length > 0 && netnsRequired())
  throw new Error(`the podman test needs ${missing.join(', ')} (Debian packages podman, busybox-static, runc, containernetworking-plugins)`);
const skip = kernelSkip || (missing.length > 0 ? `podman test needs ${missing.join(', ')} (Debian packages podman, busybox-static, runc, containernetworking-plugins)` : false);
const command = skip === false ? await lashupCommand() : [];
const binDir = fileURLToPath(new URL('../../bin', import.meta.url));

type Podman = (args: string[], timeoutMs?: number) => Promise<{ code: number; stdout: string; stderr: string }>;

/** podman inside `node`'s namespace, with storage and configuration of its own. */
function podmanFor(cluster: NetnsCluster, node: ClusterNode): Podman {
  const dir = join(cluster.root, `${node.name}-podman`);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'containers.conf');
  // crun refuses this machine's hybrid cgroup layout; runc works. Podman's default ulimits fail
  // here ("error setting rlimit type 7"), hence explicit ones.
  const text = [
    '[network]',
    'network_backend = "cni"',
    `cni_plugin_dirs = ["${CNI_PLUGIN_DIR}", "${binDir}"]`,
    `network_config_dir = "${join(node.dir, 'net.d')}"`,
    '[containers]',
    'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    'runtime = "runc"',
    '',
  ].join('\n');
  writeFileSync(conf, text);
  return (args, timeoutMs = 60_000) =>
    new Promise((resolve) => {
      execFile(
        'nsenter',
        [`--net=/run/netns/${node.host.ns}`, 'podman', '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), ...args],
        { timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, CONTAINERS_CONF: conf } },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
      );
    });
}

const within = (ip: string, cidr: string | undefined): boolean => {
  const c = parseCidr(cidr ?? '');
  const a = parseAddress(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a.family, a.value);
};

t.test('podman on two agents: addresses, pings, lease freed, conflist restored, --ip refused', { skip, timeout: 600_000 }, async (t) => {
  const cluster = await NetnsCluster.create({ agents: 2, command, prefix: 'lxt' });
  const podmans: Podman[] = [];
  t.teardown(async () => {
    // Containers first (their namespaces and veths), then podman's storage mounts, then the cluster.
    for (const p of podmans) await p(['rm', '-af', '-t', '0']);
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${cluster.root}/`));
    for (const m of mounts.sort((a, b) => b.length - a.length)) await new Promise((resolve) => execFile('umount', ['-l', m], resolve));
    await cluster.destroy();
  });
  t.ok(await cluster.converge(120_000), 'two agents leased and routed');
  const agents = ['a4', 'a5'].map((name) => cluster.nodes.get(name) as ClusterNode);
  for (const a of agents) t.ok(await eventually(() => existsSync(join(a.dir, 'net.d', 'dcos.conflist')), 60_000), `${a.name} wrote dcos.conflist`);

  // An image from busybox-static, imported into each agent's podman storage.
  const image = join(cluster.root, 'image');
  mkdirSync(join(image, 'bin'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(image, 'bin', 'busybox'));
  for (const tool of ['sh', 'ping', 'ip', 'sleep', 'cat']) symlinkSync('busybox', join(image, 'bin', tool));
  podmans.push(...agents.map((a) => podmanFor(cluster, a)));
  const tarball = join(cluster.root, 'image.tar');
  const tar = await new Promise<number>((resolve) => execFile('tar', ['-C', image, '-cf', tarball, '.'], (e) => resolve(e === null ? 0 : 1)));
  t.equal(tar, 0, 'image tarball built');
  for (const p of podmans) {
    const imported = await p(['import', tarball, 'lashup-test/busybox:1']);
    t.equal(imported.code, 0, `image imported${imported.code === 0 ? '' : `: ${imported.stderr}`}`);
  }

  const ips: string[] = [];
  for (const [i, p] of podmans.entries()) {
    const agent = agents[i] as ClusterNode;
    const started = await p(['run', '-d', '--name', `c-${agent.name}`, '--network', 'dcos', 'lashup-test/busybox:1', 'sleep', '600']);
    t.equal(started.code, 0, `a container runs on ${agent.name}${started.code === 0 ? '' : `: ${started.stderr}`}`);
    const inspect = await p(['inspect', '--format', '{{.NetworkSettings.Networks.dcos.IPAddress}}', `c-${agent.name}`]);
    const ip = inspect.stdout.trim();
    const half = cluster.leaseOf(agent.name)?.networks['dcos']?.mesos;
    t.ok(within(ip, half), `c-${agent.name} has ${ip}, from ${agent.name}'s Mesos half ${half}`);
    ips.push(ip);
  }
  const [p4, p5] = podmans as [Podman, Podman];
  const ping = async (p: Podman, from: string, to: string): Promise<boolean> => (await p(['exec', from, 'ping', '-c', '1', '-W', '1', to], 15_000)).code === 0;
  t.ok(await eventually(() => ping(p4, 'c-a4', ips[1] as string), 30_000, 500), `c-a4 pings c-a5 (${ips[1]}) across agents`);
  t.ok(await eventually(() => ping(p5, 'c-a5', ips[0] as string), 30_000, 500), `c-a5 pings c-a4 (${ips[0]})`);

  // podman rm frees the lease.
  const leases = (agent: ClusterNode): number => {
    try {
      return (JSON.parse(readFileSync(join(agent.dir, 'data', 'cni-leases.json'), 'utf8')) as { attachments: unknown[] }).attachments.length;
    } catch {
      return 0;
    }
  };
  const a4 = agents[0] as ClusterNode;
  t.equal(leases(a4), 1, 'a4 holds one container lease');
  t.equal((await p4(['rm', '-f', 'c-a4'])).code, 0, 'podman rm');
  t.ok(await eventually(() => leases(a4) === 0, 20_000), 'the lease is freed');

  // podman network rm deletes the conflist; the daemon puts it back within seconds.
  const conflist = join(a4.dir, 'net.d', 'dcos.conflist');
  const removed = await p4(['network', 'rm', 'dcos']);
  t.equal(removed.code, 0, `podman network rm dcos${removed.code === 0 ? '' : `: ${removed.stderr}`}`);
  const removedAt = Date.now();
  t.ok(await eventually(() => existsSync(conflist), 10_000, 100), 'the conflist is restored');
  t.comment(`conflist restored ${Date.now() - removedAt} ms after podman network rm`);
  t.ok(existsSync(join(a4.dir, 'net.d', 'cni.lock')), "podman's cni.lock is left alone");
  const listed = await p4(['network', 'ls', '--format', '{{.Name}}']);
  t.match(listed.stdout, /^dcos$/m, 'podman sees the network again, without a daemon restart');
  const again = await p4(['run', '--rm', '--network', 'dcos', 'lashup-test/busybox:1', 'ping', '-c', '1', '-W', '2', ips[1] as string]);
  t.equal(again.code, 0, `a new container on the restored network pings c-a5${again.code === 0 ? '' : `: ${again.stderr}`}`);

  // --ip is refused, saying why; nothing is leased.
  const half = cluster.leaseOf('a4')?.networks['dcos']?.mesos as string;
  const wanted = half.replace(/\.0\/\d+$/, '.77');
  const pinned = await p4(['run', '--rm', '--network', 'dcos', '--ip', wanted, 'lashup-test/busybox:1', 'true']);
  t.not(pinned.code, 0, `podman run --ip ${wanted} fails`);
  t.match(pinned.stderr, /does not hand out requested addresses/, "with lashup-ipam's reason");
  t.ok(await eventually(() => leases(a4) === 0, 10_000), 'and leaves no lease behind');
});
