/**
 * Containers attached through CNI, as a runtime attaches them: the reference bridge plugin
 * (Debian's containernetworking-plugins) chained with lashup-ipam, on real daemons in network
 * namespaces. Unique addresses from each agent's Mesos half, pings across agents, DEL frees,
 * 20 concurrent ADDs, leases across a daemon restart, and a tiny network that runs out.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { CNI_PLUGIN_DIR, NetnsCluster } from '../../src/demo/index.js';
import { cidrContains, parseAddress, parseCidr } from '../../src/common/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip } from '../helpers/netns.js';

const skip = (await kernelTestSkip()) || (existsSync(`${CNI_PLUGIN_DIR}/bridge`) ? false : `the reference CNI plugins are not in ${CNI_PLUGIN_DIR} (Debian package containernetworking-plugins)`);
const command = skip === false ? await lashupCommand() : [];

const ipOf = (stdout: string): string => ((JSON.parse(stdout) as { ips: { address: string }[] }).ips[0]?.address ?? '').split('/')[0] as string;
const within = (ip: string, cidr: string | undefined): boolean => {
  const c = parseCidr(cidr ?? '');
  const a = parseAddress(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a.family, a.value);
};

t.test('bridge + lashup-ipam on two agents: unique addresses, pings, DEL, concurrency, restart', { skip, timeout: 300_000 }, async (t) => {
  const cluster = await NetnsCluster.create({ agents: 2, command, prefix: 'lxt' });
  t.teardown(() => cluster.destroy());
  t.ok(await cluster.converge(120_000), 'two agents leased and routed');
  const [a4, a5] = ['a4', 'a5'];
  const half = (agent: string): string | undefined => cluster.leaseOf(agent)?.networks['dcos']?.mesos;
  const ips = new Map<string, string>();
  for (const agent of [a4, a5]) {
    for (const k of [1, 2]) {
      const id = `${agent}-c${k}`;
      const out = await cluster.cni(agent, 'ADD', id);
      t.equal(out.code, 0, `${id} attached${out.code === 0 ? '' : `: ${out.stdout} ${out.stderr}`}`);
      if (out.code !== 0) return;
      const ip = ipOf(out.stdout);
      t.ok(within(ip, half(agent)), `${id} got ${ip} from ${agent}'s Mesos half ${half(agent)}`);
      ips.set(id, ip);
    }
  }
  t.equal(new Set(ips.values()).size, 4, 'four unique addresses');
  const nsOf = (id: string): string => `${cluster.net.id}-k-${id}`;
  for (const [from, to] of [
    ['a4-c1', 'a5-c1'],
    ['a4-c2', 'a5-c2'],
    ['a5-c1', 'a4-c2'],
    ['a5-c2', 'a4-c1'],
  ] as const) {
    t.ok(await eventually(() => cluster.net.ping(nsOf(from), ips.get(to) as string, 1, 1), 20_000), `${from} pings ${to} across agents`);
  }
  const check = await cluster.cni(a4, 'CHECK', 'a4-c1');
  t.equal(check.code, 0, `CHECK of an attached container${check.code === 0 ? '' : `: ${check.stdout} ${check.stderr}`}`);

  // DEL frees the address: the next container gets it.
  const freed = ips.get('a4-c1') as string;
  t.equal((await cluster.cni(a4, 'DEL', 'a4-c1')).code, 0, 'DEL');
  t.equal((await cluster.cni(a4, 'DEL', 'a4-c1')).code, 0, 'DEL again is fine');
  const reuse = await cluster.cni(a4, 'ADD', 'a4-c3');
  t.equal(ipOf(reuse.stdout), freed, 'the freed address goes to the next container');

  // 20 concurrent ADDs on one agent.
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => cluster.cni(a5, 'ADD', `burst${i}`)));
  t.same(
    burst.filter((b) => b.code !== 0).map((b) => b.stdout),
    [],
    'every concurrent ADD succeeded',
  );
  const burstIps = burst.map((b) => ipOf(b.stdout));
  t.equal(new Set([...burstIps, ips.get('a5-c1'), ips.get('a5-c2')]).size, 22, '20 concurrent ADDs: 20 new unique addresses');

  // Leases survive a daemon restart: the same container keeps its address, a new one gets another.
  const node = cluster.nodes.get(a5);
  node?.child?.kill('SIGKILL');
  await new Promise((r) => node?.child?.once('exit', r));
  cluster.start(a5, node?.host.index as number);
  const retried = await eventually(async () => (await cluster.cni(a5, 'CHECK', 'burst3')).code === 0, 30_000);
  t.ok(retried, "after the restart the daemon still holds burst3's address (CHECK through the bridge plugin)");
  const after = ipOf((await cluster.cni(a5, 'ADD', 'late')).stdout);
  t.notOk([...burstIps, ips.get('a5-c1'), ips.get('a5-c2')].includes(after), `a new container gets a free address (${after})`);
});

t.test('a tiny network (per-agent prefix 29) runs out with a clear error, visible cluster-wide', { skip, timeout: 300_000 }, async (t) => {
  const cluster = await NetnsCluster.create({
    agents: 1,
    command,
    prefix: 'lxt',
    overlay: { networks: [{ name: 'dcos', subnet: '9.0.0.0/24', prefix: 29 }] },
  });
  t.teardown(() => cluster.destroy());
  t.ok(await cluster.converge(120_000));
  t.equal(cluster.leaseOf('a4')?.networks['dcos']?.mesos?.split('/')[1], '30', 'a /29 per agent: Mesos half /30, one container address');
  t.equal((await cluster.cni('a4', 'ADD', 'only')).code, 0);
  const full = await cluster.cni('a4', 'ADD', 'one-too-many');
  t.not(full.code, 0, 'the second ADD fails');
  const error = JSON.parse(full.stdout) as { code: number; msg: string };
  t.equal(error.code, 11, 'try again later');
  t.match(error.msg, /network dcos on agent a4 has no free container address: 1 of 1 in use/);
  const seen = await eventually(async () => {
    const r = await cluster.cli('m1', ['kv', 'get', 'cni-usage/dcos']);
    return r.code === 0 && /"exhausted": true/.test(r.stdout);
  }, 30_000);
  t.ok(seen, 'the exhaustion is in the replicated store, read on a master');
});
