/**
 * Names on a real cluster (issue 20): 3 masters and 2 agents in namespaces, containers attached
 * through the reference bridge plugin with task names in CNI_ARGS, resolving each other's
 * `containerip`, `autoip` and `agentip` names with `dig` from inside their namespaces, through
 * the resolver the CNI result names (their bridge gateway). A killed agent's names are withheld
 * once it is declared failed and come back with its restart; a released agent's names go
 * everywhere; names outside the zone reach a test upstream, and SERVFAIL once it is down.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CNI_PLUGIN_DIR, NetnsCluster, run } from '../../src/demo/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, netnsRequired } from '../helpers/netns.js';

const DIG = '/usr/bin/dig';
const needs = [DIG, `${CNI_PLUGIN_DIR}/bridge`];
const missing = needs.filter((p) => !existsSync(p));
const kernelSkip = await kernelTestSkip();
const why = `the DNS kernel test needs ${missing.join(', ')} (Debian packages dnsutils, containernetworking-plugins)`;
if (kernelSkip === false && missing.length > 0 && netnsRequired()) throw new Error(why);
const skip = kernelSkip || (missing.length > 0 ? why : false);
const command = skip === false ? await lashupCommand() : [];
const ZONE = 'dcos.thisdcos.directory';

/** `dig` in a namespace: the status and the A answers (sorted). One try, bounded. */
async function dig(ns: string, server: string, name: string): Promise<{ status: string; answers: string[] }> {
  const out = await run(['ip', 'netns', 'exec', ns, DIG, `@${server}`, name, 'A', '+tries=1', '+timeout=4', '+noall', '+comments', '+answer'], 15_000);
  const status = /status: ([A-Z]+)/.exec(out.stdout)?.[1] ?? `no answer (${out.stdout.trim().split('\n').at(-1) ?? ''})`;
  const answers = out.stdout
    .split('\n')
    .filter((l) => !l.startsWith(';') && /\sIN\s+A\s/.test(l))
    .map((l) => l.trim().split(/\s+/).at(-1) as string)
    .sort();
  return { status, answers };
}

t.test('task names through CNI resolve across agents with dig; withheld, back, released; forwarding and SERVFAIL', { skip, timeout: 600_000 }, async (t) => {
  // Agents a4, a5; the spare host (index 6, 192.0.2.6) runs the test's upstream resolver.
  const upstreamIp = '192.0.2.6';
  const cluster = await NetnsCluster.create({ agents: 2, spareHosts: 1, command, prefix: 'lxn', dns: { upstreams: [upstreamIp], upstreamTimeoutMs: 1000 } });
  const responder = spawn('ip', ['netns', 'exec', cluster.net.host(6).ns, process.execPath, fileURLToPath(new URL('../helpers/dns-responder.mjs', import.meta.url)), upstreamIp, '53', '300000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(async () => {
    if (responder.exitCode === null) responder.kill('SIGKILL');
    await cluster.destroy();
  });
  await new Promise<void>((resolve) => responder.stdout?.once('data', () => resolve()));
  t.ok(await cluster.converge(120_000), 'two agents leased and routed');

  const web = await cluster.cni('a4', 'ADD', 'web1', 'dcos', 'IgnoreUnknown=1;LASHUP_TASK=web;LASHUP_FRAMEWORK=shop');
  const db = await cluster.cni('a5', 'ADD', 'db1', 'dcos', 'IgnoreUnknown=1;LASHUP_TASK=db;LASHUP_FRAMEWORK=shop');
  t.equal(web.code, 0, `web attached on a4${web.code === 0 ? '' : `: ${web.stdout} ${web.stderr}`}`);
  t.equal(db.code, 0, `db attached on a5${db.code === 0 ? '' : `: ${db.stdout} ${db.stderr}`}`);
  if (web.code !== 0 || db.code !== 0) return;
  type Result = { ips: { address: string; gateway: string }[]; dns?: { nameservers?: string[] } };
  const webResult = JSON.parse(web.stdout) as Result;
  const dbResult = JSON.parse(db.stdout) as Result;
  const webIp = webResult.ips[0]?.address.split('/')[0] as string;
  const dbIp = dbResult.ips[0]?.address.split('/')[0] as string;
  t.same(webResult.dns?.nameservers, [webResult.ips[0]?.gateway], 'the CNI result names the bridge gateway as resolver');
  const resolver4 = webResult.dns?.nameservers?.[0] as string;
  const resolver5 = dbResult.dns?.nameservers?.[0] as string;
  const a4Ip = cluster.net.host(4).ip;
  const a5Ip = cluster.net.host(5).ip;

  // Each container resolves the other's names (and its own) through its gateway.
  t.ok(await eventually(async () => (await dig(web.ns, resolver4, `db.shop.containerip.${ZONE}`)).answers.join() === dbIp, 30_000, 250), `from a4's container: db.shop.containerip -> ${dbIp}`);
  t.same(await dig(web.ns, resolver4, `DB.Shop.autoip.${ZONE}`), { status: 'NOERROR', answers: [dbIp] }, 'autoip (case-insensitive): the container address');
  t.same(await dig(web.ns, resolver4, `db.shop.agentip.${ZONE}`), { status: 'NOERROR', answers: [a5Ip] }, "agentip: a5's address");
  t.ok(await eventually(async () => (await dig(db.ns, resolver5, `web.shop.containerip.${ZONE}`)).answers.join() === webIp, 30_000, 250), `from a5's container: web.shop.containerip -> ${webIp}`);
  t.same(await dig(db.ns, resolver5, `web.shop.agentip.${ZONE}`), { status: 'NOERROR', answers: [a4Ip] });
  t.equal((await dig(db.ns, resolver5, `nope.shop.containerip.${ZONE}`)).status, 'NXDOMAIN', 'an unknown name: NXDOMAIN');
  // The names answer on the agents' loopback too, and on the masters.
  t.same((await dig(cluster.net.host(1).ns, '127.0.0.1', `web.shop.containerip.${ZONE}`)).answers, [webIp], 'a master answers too');

  // Outside the zone: forwarded to the test's upstream; SERVFAIL once it is down.
  t.same(await dig(web.ns, resolver4, 'www.example.test'), { status: 'NOERROR', answers: ['203.0.113.7'] }, 'a name outside the zone comes from the upstream');
  responder.kill('SIGKILL');
  await new Promise((r) => (responder.exitCode !== null ? r(undefined) : responder.once('exit', r)));
  t.equal((await dig(web.ns, resolver4, 'www.example.test')).status, 'SERVFAIL', 'and is SERVFAIL when the upstream is down');

  // a5 killed: once declared failed its names are withheld; they return after its restart.
  const a5 = cluster.nodes.get('a5');
  a5?.child?.kill('SIGKILL');
  await new Promise((r) => a5?.child?.once('exit', r));
  t.ok(
    await eventually(async () => (await dig(web.ns, resolver4, `db.shop.containerip.${ZONE}`)).status === 'NXDOMAIN', 60_000, 500),
    "a killed agent's names are withheld once it is declared failed",
  );
  cluster.start('a5', 5);
  t.ok(
    await eventually(async () => (await dig(web.ns, resolver4, `db.shop.containerip.${ZONE}`)).answers.join() === dbIp, 60_000, 500),
    'and return after its restart (the name is kept with the container address)',
  );

  // a5 stopped and released: its names go everywhere.
  const exited = new Promise((r) => a5?.child?.once('exit', r));
  a5?.child?.kill('SIGTERM');
  await exited;
  let released = false;
  for (const m of ['m1', 'm2', 'm3']) {
    if (released) break;
    released = (await cluster.cli(m, ['allocations', 'release', 'a5', '--force'])).code === 0;
  }
  t.ok(released, 'a5 released');
  for (const [name, ns] of [
    ['m1', cluster.net.host(1).ns],
    ['a4', cluster.net.host(4).ns],
  ] as const) {
    t.ok(await eventually(async () => (await dig(ns, '127.0.0.1', `db.shop.agentip.${ZONE}`)).status === 'NXDOMAIN', 30_000, 250), `${name}: the released agent's names are gone`);
  }
  const tasks = JSON.parse(await cluster.apiGet('a4', '/v1/tasks')) as { tasks: Record<string, { tasks: { source: string; task: string }[] }> };
  t.notOk('a5' in tasks.tasks, "a5's row is gone from the store");
  t.match(tasks.tasks['a4']?.tasks, [{ source: 'cni', task: 'web' }], "a4's task, learnt from CNI");
});
