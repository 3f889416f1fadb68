/**
 * Docker containers on the overlay (issue 18): two agents, each with a dockerd of its own in its
 * namespace (`--bridge=none --iptables=false`), an image imported from busybox-static. Shown:
 * lashup creates the Docker networks; Docker containers get addresses from their agents' Docker
 * halves and ping each other and CNI containers across agents (IPv4 and IPv6); a Docker network
 * deleted by hand and a restarted dockerd are put right; a foreign network of an overlay
 * network's name is reported and left alone; a tiny Docker half runs out with Docker's own error
 * and the usage shows it; a container labelled with a task name resolves from another agent's
 * container (issue 20).
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { cidrContains, parseAddress, parseCidr } from '../../src/common/index.js';
import { BUSYBOX, busyboxImageTarball, CNI_PLUGIN_DIR, DOCKERD, NetnsCluster, run, unmountUnder, type ClusterNode, type Dockerd } from '../../src/demo/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, netnsRequired } from '../helpers/netns.js';

const needs = [DOCKERD ?? '/usr/sbin/dockerd', BUSYBOX, `${CNI_PLUGIN_DIR}/bridge`];
const missing = needs.filter((p) => !existsSync(p));
const kernelSkip = await kernelTestSkip();
const why = `the Docker test needs ${missing.join(', ')} (Debian packages docker.io, busybox-static, containernetworking-plugins)`;
if (kernelSkip === false && missing.length > 0 && netnsRequired()) throw new Error(why);
const skip = kernelSkip || (missing.length > 0 ? why : false);
const command = skip === false ? await lashupCommand() : [];

const within = (ip: string, cidr: string | undefined): boolean => {
  const c = parseCidr(cidr ?? '');
  const a = parseAddress(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a.family, a.value);
};

const overlay = {
  networks: [
    { name: 'dcos', subnet: '9.0.0.0/8', prefix: 24 },
    { name: 'dcos6', subnet6: 'fd01:b::/64', prefix6: 80 },
    // Per-agent /29: a Docker half of four addresses, one of them for a container.
    { name: 'tiny', subnet: '10.99.0.0/24', prefix: 29 },
  ],
};

t.test('Docker containers on two agents: networks, addresses, pings, repairs, conflicts, exhaustion', { skip, timeout: 900_000 }, async (t) => {
  const cluster = await NetnsCluster.create({ agents: 2, command, prefix: 'lxk', overlay });
  const daemons = new Map<string, Dockerd>();
  t.teardown(async () => {
    for (const d of daemons.values()) {
      await d.docker(['rm', '-f', '-t', '0', ...(await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean)]);
      await d.stop();
    }
    // dockerd's overlay mounts under its data root go before the directory does.
    await unmountUnder(cluster.root);
    await cluster.destroy();
  });
  t.ok(await cluster.converge(120_000), 'two agents leased and routed');
  const agents = ['a4', 'a5'].map((name) => cluster.nodes.get(name) as ClusterNode);
  for (const a of agents) daemons.set(a.name, await cluster.startDockerd(a.name));
  const [d4, d5] = agents.map((a) => daemons.get(a.name) as Dockerd) as [Dockerd, Dockerd];
  const networks = async (d: Dockerd): Promise<string[]> =>
    (await d.docker(['network', 'ls', '--filter', 'label=io.lashup.network', '--format', '{{.Name}}'])).stdout.split('\n').filter(Boolean).sort();
  for (const d of [d4, d5]) t.ok(await eventually(async () => (await networks(d)).join(',') === 'dcos,dcos6,tiny', 30_000, 250), 'lashup made dcos, dcos6 and tiny in the Docker daemon');
  const inspected = JSON.parse((await d4.docker(['network', 'inspect', 'dcos'])).stdout) as { Options: Record<string, string>; IPAM: { Config: { Subnet: string; Gateway: string }[] } }[];
  const lease4 = cluster.leaseOf('a4');
  t.match(inspected[0], {
    Options: { 'com.docker.network.bridge.name': 'd-dcos', 'com.docker.network.bridge.enable_ip_masquerade': 'false', 'com.docker.network.driver.mtu': '1420' },
    IPAM: { Config: [{ Subnet: lease4?.networks['dcos']?.docker, Gateway: lease4?.networks['dcos']?.dockerGateway }] },
  });

  // An image from busybox-static in each daemon.
  const tarball = await busyboxImageTarball(cluster.root);
  for (const d of [d4, d5]) {
    const imported = await d.docker(['import', tarball, 'lashup-test/busybox:1']);
    t.equal(imported.code, 0, `image imported${imported.code === 0 ? '' : `: ${imported.stderr}`}`);
  }

  // A Docker container on dcos and dcos6 per agent, and a CNI container per agent.
  const ip4: Record<string, string> = {};
  const ip6: Record<string, string> = {};
  for (const [i, d] of [d4, d5].entries()) {
    const agent = (agents[i] as ClusterNode).name;
    const started = await d.docker(['run', '-d', '--name', 'ctr', '--network', 'dcos', 'lashup-test/busybox:1', 'sleep', '600']);
    t.equal(started.code, 0, `a Docker container runs on ${agent}${started.code === 0 ? '' : `: ${started.stderr}`}`);
    // IPv6 in a container of its own: Docker 20.10 gives an IPv6-only network an IPv4 pool of
    // its own too, and a container on both networks may take its default route from it.
    const started6 = await d.docker(['run', '-d', '--name', 'ctr6', '--network', 'dcos6', 'lashup-test/busybox:1', 'sleep', '600']);
    t.equal(started6.code, 0, `a Docker container on dcos6 runs on ${agent}${started6.code === 0 ? '' : `: ${started6.stderr}`}`);
    ip4[agent] = (await d.docker(['inspect', '--format', '{{.NetworkSettings.Networks.dcos.IPAddress}}', 'ctr'])).stdout.trim();
    ip6[agent] = (await d.docker(['inspect', '--format', '{{.NetworkSettings.Networks.dcos6.GlobalIPv6Address}}', 'ctr6'])).stdout.trim();
    const lease = cluster.leaseOf(agent);
    t.ok(within(ip4[agent] as string, lease?.networks['dcos']?.docker), `${agent}'s container has ${ip4[agent]}, from its Docker half ${lease?.networks['dcos']?.docker}`);
    t.ok(within(ip6[agent] as string, lease?.networks['dcos6']?.docker6), `and ${ip6[agent]}, from its IPv6 Docker half ${lease?.networks['dcos6']?.docker6}`);
  }
  const cni = await cluster.cni('a5', 'ADD', 'k5');
  t.equal(cni.code, 0, `a CNI container on a5${cni.code === 0 ? '' : `: ${cni.stderr}`}`);
  const cniIp = ((JSON.parse(cni.stdout) as { ips: { address: string }[] }).ips[0]?.address ?? '').split('/')[0] as string;
  const ping = async (d: Dockerd, to: string, six = false): Promise<boolean> => (await d.docker(['exec', six ? 'ctr6' : 'ctr', six ? 'ping6' : 'ping', '-c', '1', '-W', '1', to], 15_000)).code === 0;
  t.ok(await eventually(() => ping(d4, ip4['a5'] as string), 30_000, 500), `a4's Docker container pings a5's (${ip4['a5']}) across agents`);
  t.ok(await eventually(() => ping(d5, ip4['a4'] as string), 30_000, 500), `and back (${ip4['a4']})`);
  t.ok(await eventually(() => ping(d4, cniIp), 30_000, 500), `a4's Docker container pings a5's CNI container (${cniIp})`);
  t.ok(
    await eventually(async () => (await run(['ip', 'netns', 'exec', cni.ns, 'ping', '-c', '1', '-W', '1', ip4['a4'] as string])).code === 0, 30_000, 500),
    "a5's CNI container pings a4's Docker container",
  );
  t.ok(await eventually(() => ping(d4, ip6['a5'] as string, true), 30_000, 500), `IPv6: a4's Docker container pings a5's (${ip6['a5']})`);
  // Names from labels (issue 20): a labelled container on a5 resolves from a4's container,
  // through a4's DNS server on its d-dcos gateway; removed, the name goes.
  const named = await d5.docker(['run', '-d', '--name', 'named', '--network', 'dcos', '--label', 'lashup.task=dweb', '--label', 'lashup.framework=shop', 'lashup-test/busybox:1', 'sleep', '600']);
  t.equal(named.code, 0, `a labelled container runs on a5${named.code === 0 ? '' : `: ${named.stderr}`}`);
  const namedIp = (await d5.docker(['inspect', '--format', '{{.NetworkSettings.Networks.dcos.IPAddress}}', 'named'])).stdout.trim();
  const gateway4 = lease4?.networks['dcos']?.dockerGateway as string;
  const lookup = async (): Promise<{ code: number; stdout: string }> => d4.docker(['exec', 'ctr', 'nslookup', `dweb.shop.containerip.dcos.thisdcos.directory`, gateway4], 15_000);
  const resolved = await eventually(async () => (await lookup()).stdout.includes(namedIp), 30_000, 500);
  t.ok(
    resolved,
    `a4's Docker container resolves the labelled container's name (${namedIp}) through its gateway ${gateway4}${resolved ? '' : `; nslookup: ${JSON.stringify(await lookup())}; a5's tasks: ${await cluster.apiGet('a5', '/v1/tasks')}; a4's dns: ${await cluster.apiGet('a4', '/v1/dns?name=dweb.shop.containerip.dcos.thisdcos.directory')}`}`,
  );
  t.equal((await d5.docker(['rm', '-f', 'named'])).code, 0, 'the labelled container removed');
  t.ok(await eventually(async () => /NXDOMAIN/.test((await lookup()).stdout), 30_000, 500), 'and its name is gone');

  const cni4 = await cluster.cni('a4', 'ADD', 'k4');
  t.equal(cni4.code, 0, `a CNI container on a4${cni4.code === 0 ? '' : `: ${cni4.stderr}`}`);
  const cni4Ip = ((JSON.parse(cni4.stdout) as { ips: { address: string }[] }).ips[0]?.address ?? '').split('/')[0] as string;
  t.ok(await eventually(() => ping(d4, cni4Ip), 30_000, 500), `on one agent, the Docker container (d-dcos) pings the CNI container (m-dcos, ${cni4Ip})`);

  // Deleted by hand: made again.
  t.equal((await d5.docker(['rm', '-f', 'ctr6'])).code, 0, 'the dcos6 container on a5 removed');
  t.equal((await d5.docker(['network', 'rm', 'dcos6'])).code, 0, 'docker network rm dcos6 on a5');
  t.ok(await eventually(async () => (await networks(d5)).includes('dcos6'), 20_000, 250), 'lashup makes dcos6 again');

  // dockerd restarted: picked up again, containers keep working.
  await d4.stop();
  daemons.delete('a4');
  const d4b = await cluster.startDockerd('a4');
  daemons.set('a4', d4b);
  t.ok(await eventually(async () => (await networks(d4b)).join(',') === 'dcos,dcos6,tiny', 30_000, 250), 'after a dockerd restart the networks are there');
  const again = await d4b.docker(['run', '--rm', '--network', 'dcos', 'lashup-test/busybox:1', 'ping', '-c', '1', '-W', '2', ip4['a5'] as string]);
  t.equal(again.code, 0, `a new container after the restart pings a5's${again.code === 0 ? '' : `: ${again.stderr}`}`);

  // A foreign network of an overlay network's name: reported, never touched. (Taking the name
  // races lashup's own resync, hence a bounded retry.)
  let foreign = false;
  for (let i = 0; i < 5 && !foreign; i++) {
    await d5.docker(['network', 'rm', 'tiny']);
    foreign = (await d5.docker(['network', 'create', '--subnet', '172.31.7.0/24', 'tiny'])).code === 0;
  }
  t.ok(foreign, 'a foreign network named tiny exists on a5');
  const report = async (): Promise<{ conflicts: { network: string; kind: string }[] }> =>
    JSON.parse((await cluster.cli('a5', ['docker'])).stdout || '{"conflicts":[]}') as { conflicts: { network: string; kind: string }[] };
  t.ok(await eventually(async () => (await report()).conflicts.some((c) => c.network === 'tiny' && c.kind === 'foreign'), 20_000, 250), '`lashup docker` reports it as foreign');
  const subnet = (JSON.parse((await d5.docker(['network', 'inspect', 'tiny'])).stdout) as { IPAM: { Config: { Subnet: string }[] } }[])[0]?.IPAM.Config[0]?.Subnet;
  t.equal(subnet, '172.31.7.0/24', 'and leaves it alone');

  // Exhaustion of a tiny Docker half: Docker's own error, and the usage shows it.
  t.equal((await d4b.docker(['run', '-d', '--name', 't1', '--network', 'tiny', 'lashup-test/busybox:1', 'sleep', '600'])).code, 0, 'one container fits in a4 tiny half');
  const full = await d4b.docker(['run', '-d', '--name', 't2', '--network', 'tiny', 'lashup-test/busybox:1', 'sleep', '600']);
  t.not(full.code, 0, 'the second does not');
  t.match(full.stderr, /no available IPv4 addresses/i, "with Docker's own error");
  const usage = async (): Promise<{ used?: number; total?: number; exhausted?: boolean } | undefined> => {
    try {
      return (JSON.parse((await cluster.cli('m1', ['kv', 'get', 'docker-usage/tiny'])).stdout) as { value: Record<string, { used?: number; total?: number; exhausted?: boolean }> }).value['a4'];
    } catch {
      return undefined;
    }
  };
  t.ok(await eventually(async () => (await usage())?.exhausted === true, 30_000, 500), "the masters see a4's tiny Docker half full");
  t.match(await usage(), { used: 1, total: 1, exhausted: true });
  const api = await cluster.apiGet('m1', '/v1/overlay/tiny/usage');
  t.match(JSON.parse(api), { network: 'tiny', dockerContainers: { a4: { used: 1, total: 1, exhausted: true } } }, 'and so does the usage API on a master');
});
