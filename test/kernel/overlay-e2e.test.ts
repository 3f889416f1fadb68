/**
 * The daemon end to end on real kernels: 3 masters and 4 agents, each a `lashup agent` process in
 * its own host namespace on a switch namespace, two container namespaces on each agent's m-dcos
 * bridge. Checked: every container pings every other; a SIGKILLed agent's routes stay in place
 * elsewhere and its restart comes back with the same subnet and VTEP MAC; a partition isolating
 * one master and two agents (the majority keeps allocating, both sides keep their routes, a new
 * agent on the minority side says it waits for a quorum, and gets its subnet after healing);
 * releasing a decommissioned agent removes its routes everywhere; a malformed config is refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Lease } from '../../src/ipam/index.js';
import { generateClusterKey } from '../../src/net/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, must, run, TestNet, type TestHost } from '../helpers/netns.js';

const skip = await kernelTestSkip();
const cli = skip === false ? await lashupCommand() : [];

interface NodeProc {
  host: TestHost;
  name: string;
  dir: string;
  child?: ChildProcess;
  log: string;
}

/** Runs the CLI in a host namespace; resolves with exit code and output. */
function lashup(ns: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(['ip', 'netns', 'exec', ns, ...cli, ...args], 60_000);
}

t.test('3 masters, 4 agents: pings, a killed agent, a partition, a release, a bad config', { skip, timeout: 600_000 }, async (t) => {
  const net = await TestNet.create({ hosts: 9 });
  const root = mkdtempSync(join(tmpdir(), 'lashup-e2e-'));
  const key = generateClusterKey();
  const nodes = new Map<string, NodeProc>();
  const containers: string[] = [];
  t.teardown(async () => {
    for (const n of nodes.values()) if (n.child !== undefined && n.child.exitCode === null) n.child.kill('SIGKILL');
    for (const ns of containers) await run(['ip', 'netns', 'del', ns]);
    await net.destroy();
    rmSync(root, { recursive: true, force: true });
  });
  const configFor = (name: string, host: TestHost): Record<string, unknown> => ({
    name,
    role: name.startsWith('m') ? 'master' : 'agent',
    underlayIp: host.ip,
    dataDir: join(root, name, 'data'),
    masters: ['m1', 'm2', 'm3'],
    seeds: ['192.0.2.1:62502', '192.0.2.2:62502', '192.0.2.3:62502'],
    cluster: { keys: [key] },
    membership: { profile: 'local' },
  });
  const start = (n: NodeProc): void => {
    const child = spawn('ip', ['netns', 'exec', n.host.ns, ...cli, 'agent', '--config', join(n.dir, 'config.json')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LASHUP_LOG_LEVEL: 'warn' },
    });
    child.stderr?.on('data', (c: Buffer) => {
      n.log = (n.log + c.toString()).slice(-20_000);
    });
    n.child = child;
  };
  const add = async (name: string, hostIndex: number): Promise<NodeProc> => {
    const host = net.host(hostIndex);
    const dir = join(root, name);
    await must(['mkdir', '-p', dir]);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(configFor(name, host), null, 2));
    const n: NodeProc = { host, name, dir, log: '' };
    nodes.set(name, n);
    start(n);
    return n;
  };
  const leaseOf = (n: NodeProc): Lease | undefined => {
    const path = join(n.dir, 'data', 'lease.json');
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Lease) : undefined;
  };
  const routeTo = async (from: NodeProc, to: NodeProc): Promise<boolean> => {
    const subnet = leaseOf(to)?.networks['dcos']?.subnet;
    if (subnet === undefined) return false;
    return /proto 76/.test((await run(['ip', '-n', from.host.ns, 'route', 'show', subnet])).stdout);
  };

  for (const [name, index] of [
    ['m1', 1],
    ['m2', 2],
    ['m3', 3],
    ['a4', 4],
    ['a5', 5],
    ['a6', 6],
    ['a7', 7],
  ] as const) {
    await add(name, index);
  }
  const agents = ['a4', 'a5', 'a6', 'a7'].map((n) => nodes.get(n) as NodeProc);
  const leased = await eventually(() => agents.every((a) => leaseOf(a) !== undefined), 120_000);
  t.ok(leased, `every agent got a lease${leased ? '' : `\n${[...nodes.values()].map((a) => `${a.name} (exit ${a.child?.exitCode}): ${a.log.slice(-1500)}`).join('\n')}`}`);
  if (!leased) return;
  const subnets = agents.map((a) => leaseOf(a)?.networks['dcos']?.subnet);
  t.equal(new Set(subnets).size, 4, `four distinct subnets: ${subnets.join(', ')}`);

  // Two containers per agent, addressed from the agent's Mesos half (gateway + 1, + 2).
  const containerIps = new Map<string, { ns: string; ip: string; agent: string }>();
  for (const a of agents) {
    const half = leaseOf(a)?.networks['dcos'];
    const gw = half?.mesosGateway as string;
    const prefix = (half?.mesos as string).split('/')[1];
    t.ok(await eventually(async () => (await run(['ip', '-n', a.host.ns, 'link', 'show', 'm-dcos'])).code === 0, 60_000), `${a.name} has its bridge`);
    for (const k of [1, 2]) {
      const ip = gw.replace(/\.(\d+)$/, (_, last: string) => `.${Number(last) + k}`);
      const ns = `${net.id}-c${a.host.index}${k}`;
      await must(['ip', 'netns', 'add', ns]);
      containers.push(ns);
      const hostEnd = `c${a.host.index}${k}`;
      await must(['ip', '-n', a.host.ns, 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await must(['ip', '-n', a.host.ns, 'link', 'set', hostEnd, 'master', 'm-dcos', 'up']);
      await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      await must(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
      await must(['ip', '-n', ns, 'addr', 'add', `${ip}/${prefix}`, 'dev', 'eth0']);
      await must(['ip', '-n', ns, 'route', 'add', 'default', 'via', gw]);
      containerIps.set(ns, { ns, ip, agent: a.name });
    }
  }
  const pingPairs = async (among: (agent: string) => boolean, ms: number): Promise<string[]> => {
    const failures: string[] = [];
    const list = [...containerIps.values()].filter((c) => among(c.agent));
    for (const from of list) {
      for (const to of list) {
        if (from === to) continue;
        if (!(await eventually(() => net.ping(from.ns, to.ip, 1, 1), ms))) failures.push(`${from.agent}/${from.ip} -> ${to.agent}/${to.ip}`);
      }
    }
    return failures;
  };
  t.same(await pingPairs(() => true, 60_000), [], 'every container pings every other (8 containers, 56 pairs)');
  t.match((await run(['ip', 'netns', 'exec', agents[0]!.host.ns, 'nft', 'list', 'table', 'ip', 'lashup'])).stdout, /9\.0\.0\.0\/8.*masquerade/, 'masquerade table in place');

  // SIGKILL of an agent: others keep its route; the restart keeps subnet and MAC, pings resume.
  const a5 = nodes.get('a5') as NodeProc;
  const before5 = leaseOf(a5) as Lease;
  a5.child?.kill('SIGKILL');
  await new Promise((r) => a5.child?.once('exit', r));
  await new Promise((r) => setTimeout(r, 3000));
  t.ok(await routeTo(nodes.get('a4') as NodeProc, a5), "a4 keeps the killed agent's route");
  start(a5);
  t.same(await pingPairs(() => true, 60_000), [], 'pings resume after the restart, with no reconfiguration');
  t.equal(leaseOf(a5)?.networks['dcos']?.subnet, before5.networks['dcos']?.subnet, 'same subnet');
  t.equal(leaseOf(a5)?.vtepMac, before5.vtepMac, 'same VTEP MAC');

  // Partition: m3, a6, a7 (and the spare host 9) cut off from m1, m2, a4, a5 (and host 8).
  const majorityIps = ['192.0.2.1', '192.0.2.2', '192.0.2.4', '192.0.2.5', '192.0.2.8'];
  const minorityHosts = [3, 6, 7, 9].map((i) => net.host(i));
  for (const h of minorityHosts) await net.isolate(h, majorityIps);
  const a8 = await add('a8', 8);
  t.ok(await eventually(() => leaseOf(a8) !== undefined, 60_000), `the majority side keeps allocating (a8 leased)${leaseOf(a8) === undefined ? `: ${a8.log.slice(-1500)}` : ''}`);
  const a9 = await add('a9', 9);
  t.ok(await eventually(() => /waiting for a quorum/.test(a9.log), 60_000), `a new agent on the minority side says it waits for a quorum${/waiting for a quorum/.test(a9.log) ? '' : `: ${a9.log.slice(-1500)}`}`);
  t.equal(leaseOf(a9), undefined, 'and has no lease');
  t.ok(await routeTo(nodes.get('a6') as NodeProc, nodes.get('a4') as NodeProc), 'minority side keeps its route to a majority agent');
  t.ok(await routeTo(nodes.get('a4') as NodeProc, nodes.get('a6') as NodeProc), 'majority side keeps its route to a minority agent');
  t.same(await pingPairs((a) => a === 'a6' || a === 'a7', 30_000), [], 'containers on the minority side still ping each other');
  t.same(await pingPairs((a) => a === 'a4' || a === 'a5', 30_000), [], 'and on the majority side');
  for (const h of minorityHosts) await net.heal(h);
  t.ok(await eventually(() => leaseOf(a9) !== undefined, 90_000), `after healing the minority agent gets its subnet${leaseOf(a9) === undefined ? `: ${a9.log.slice(-1500)}` : ''}`);
  const all = [...agents, a8, a9];
  let missing: string[] = [];
  const meshed = await eventually(async () => {
    missing = [];
    for (const from of all) for (const to of all) if (from !== to && !(await routeTo(from, to))) missing.push(`${from.name} -> ${to.name}`);
    return missing.length === 0;
  }, 60_000);
  t.ok(meshed, `every agent routes to every other after healing${meshed ? '' : `; missing: ${missing.join(', ')}`}`);
  t.same(await pingPairs(() => true, 60_000), [], 'every container pings every other after healing');

  // Decommission a7: stop it, release it on a master; its routes disappear everywhere.
  const a7 = nodes.get('a7') as NodeProc;
  const subnet7 = leaseOf(a7)?.networks['dcos']?.subnet as string;
  const exited = new Promise<number | null>((r) => a7.child?.once('exit', (code) => r(code)));
  a7.child?.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: a7 left and exited 0');
  let released = false;
  for (const m of ['m1', 'm2', 'm3']) {
    const r = await lashup(net.host(Number(m.slice(1))).ns, ['allocations', 'release', 'a7']);
    if (r.code === 0) {
      released = true;
      t.match(r.stdout, /"released": true/);
      break;
    }
  }
  t.ok(released, 'a master released a7');
  const others = all.filter((a) => a !== a7);
  t.ok(await eventually(async () => {
    for (const a of others) if (/proto 76/.test((await run(['ip', '-n', a.host.ns, 'route', 'show', subnet7])).stdout)) return false;
    return true;
  }, 30_000), `the released agent's route (${subnet7}) is gone from every agent`);

  // A malformed config is refused at start, naming the field.
  const badDir = join(root, 'bad');
  await must(['mkdir', '-p', badDir]);
  writeFileSync(join(badDir, 'config.json'), JSON.stringify({ ...configFor('bad', net.host(9)), api: { port: 'x' } }));
  const bad = await lashup(net.host(9).ns, ['agent', '--config', join(badDir, 'config.json')]);
  t.equal(bad.code, 4, 'exit code 4: invalid configuration');
  t.match(bad.stderr, /\$\.api\.port = "x": expected an integer from 1 to 65535/);

  // The CLI reads the local daemon's status.
  const status = await lashup(net.host(4).ns, ['status']);
  t.equal(status.code, 0);
  t.match(JSON.parse(status.stdout), { name: 'a4', role: 'agent', dataplane: { converged: true } });
});
