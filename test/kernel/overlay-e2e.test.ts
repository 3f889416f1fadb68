/**
 * The daemon end to end on real kernels: 3 masters and 2 agents, each a `lashup agent` process in
 * its own host namespace on a switch namespace; every agent gets a lease, programs its VTEP and
 * bridges, publishes its entry, and programs the others; a container namespace on each agent's
 * m-dcos bridge pings the containers of the other agents. A SIGKILLed agent's routes stay in
 * place elsewhere; restarted, it comes back with the same subnet and VTEP MAC.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Lease } from '../../src/ipam/index.js';
import { generateClusterKey } from '../../src/net/index.js';
import { kernelTestSkip, run, TestNet, type TestHost } from '../helpers/netns.js';

const skip = await kernelTestSkip();
const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

async function eventually(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function must(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface NodeProc {
  host: TestHost;
  name: string;
  dir: string;
  child?: ChildProcess;
  log: string;
}

t.test('3 masters, 2 agents: containers ping across agents; a killed agent comes back unchanged', { skip, timeout: 240_000 }, async (t) => {
  const net = await TestNet.create({ hosts: 5 });
  const root = mkdtempSync(join(tmpdir(), 'lashup-e2e-'));
  const key = generateClusterKey();
  const nodes: NodeProc[] = [];
  const containers: string[] = [];
  t.teardown(async () => {
    for (const n of nodes) if (n.child !== undefined && n.child.exitCode === null) n.child.kill('SIGKILL');
    for (const ns of containers) await run(['ip', 'netns', 'del', ns]);
    await net.destroy();
    rmSync(root, { recursive: true, force: true });
  });
  const start = (n: NodeProc): void => {
    const child = spawn('ip', ['netns', 'exec', n.host.ns, process.execPath, ...process.execArgv, cli, 'agent', '--config', join(n.dir, 'config.json')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LASHUP_LOG_LEVEL: 'warn' },
    });
    child.stderr?.on('data', (c: Buffer) => {
      n.log = (n.log + c.toString()).slice(-4000);
    });
    n.child = child;
  };
  for (const host of net.hosts) {
    const master = host.index <= 3;
    const name = master ? `m${host.index}` : `a${host.index}`;
    const dir = join(root, name);
    const config = {
      name,
      role: master ? 'master' : 'agent',
      underlayIp: host.ip,
      dataDir: join(dir, 'data'),
      masters: ['m1', 'm2', 'm3'],
      seeds: ['192.0.2.1:62502', '192.0.2.2:62502'],
      cluster: { keys: [key] },
      membership: { profile: 'local' },
      dataplane: { masquerade: true },
    };
    await must(['mkdir', '-p', dir]);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
    const n: NodeProc = { host, name, dir, log: '' };
    nodes.push(n);
    start(n);
  }
  const agents = nodes.filter((n) => n.name.startsWith('a'));
  const leaseOf = (n: NodeProc): Lease | undefined => {
    const path = join(n.dir, 'data', 'lease.json');
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Lease) : undefined;
  };
  const leased = await eventually(() => agents.every((a) => leaseOf(a) !== undefined), 90_000);
  t.ok(leased, `every agent got a lease${leased ? '' : `: ${agents.map((a) => `${a.name}: ${a.log}`).join('\n')}`}`);
  if (!leased) return;
  const leases = new Map(agents.map((a) => [a.name, leaseOf(a) as Lease]));
  const subnets = [...leases.values()].map((l) => l.networks['dcos']?.subnet);
  t.equal(new Set(subnets).size, agents.length, `distinct subnets: ${subnets.join(', ')}`);

  // A container per agent on m-dcos, addressed from the agent's Mesos half.
  const containerIp = new Map<string, string>();
  for (const a of agents) {
    const lease = leases.get(a.name) as Lease;
    const gw = lease.networks['dcos']?.mesosGateway as string;
    const prefix = (lease.networks['dcos']?.mesos as string).split('/')[1];
    const ip = gw.replace(/\.(\d+)$/, (_, last: string) => `.${Number(last) + 1}`);
    const ns = `${net.id}-c${a.host.index}`;
    await eventually(async () => (await run(['ip', '-n', a.host.ns, 'link', 'show', 'm-dcos'])).code === 0, 30_000);
    await must(['ip', 'netns', 'add', ns]);
    containers.push(ns);
    await must(['ip', '-n', a.host.ns, 'link', 'add', `c${a.host.index}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await must(['ip', '-n', a.host.ns, 'link', 'set', `c${a.host.index}`, 'master', 'm-dcos', 'up']);
    await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await must(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    await must(['ip', '-n', ns, 'addr', 'add', `${ip}/${prefix}`, 'dev', 'eth0']);
    await must(['ip', '-n', ns, 'route', 'add', 'default', 'via', gw]);
    containerIp.set(a.name, ip);
  }
  const pingAll = async (ms: number): Promise<string[]> => {
    const failures: string[] = [];
    for (const from of agents) {
      for (const to of agents) {
        if (from === to) continue;
        const ok = await eventually(() => net.ping(`${net.id}-c${from.host.index}`, containerIp.get(to.name) as string, 1, 1), ms);
        if (!ok) failures.push(`${from.name} -> ${to.name}`);
      }
    }
    return failures;
  };
  t.same(await pingAll(60_000), [], 'every container pings every other across agents');
  const nft = await run(['ip', 'netns', 'exec', agents[0]!.host.ns, 'nft', 'list', 'table', 'ip', 'lashup']);
  t.match(nft.stdout, /9\.0\.0\.0\/8.*masquerade/, 'the masquerade table is in place');

  // SIGKILL one agent: the other keeps its route to it; the restart keeps subnet and MAC.
  const victim = agents[1] as NodeProc;
  const other = agents[0] as NodeProc;
  const victimSubnet = leases.get(victim.name)?.networks['dcos']?.subnet as string;
  victim.child?.kill('SIGKILL');
  await new Promise((r) => victim.child?.once('exit', r));
  await new Promise((r) => setTimeout(r, 3000));
  t.match((await run(['ip', '-n', other.host.ns, 'route', 'show', victimSubnet])).stdout, /proto 76/, "the survivor keeps the killed agent's route");
  start(victim);
  t.same(await pingAll(60_000), [], 'pings resume after the restart, with no reconfiguration');
  const after = leaseOf(victim);
  t.equal(after?.networks['dcos']?.subnet, victimSubnet, 'same subnet after the restart');
  t.equal(after?.vtepMac, leases.get(victim.name)?.vtepMac, 'same VTEP MAC');
  t.match((await run(['ip', '-n', victim.host.ns, 'link', 'show', 'vtep1024'])).stdout, new RegExp(after?.vtepMac as string), 'the VTEP carries it');

  // Graceful stop: SIGTERM leaves and exits 0.
  const term = agents[0] as NodeProc;
  const exited = new Promise<number | null>((r) => term.child?.once('exit', (code) => r(code)));
  term.child?.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: left the cluster and exited 0');
});
