/**
 * Isolation between overlay networks (issue 19), on a real kernel: three networks on two agents
 * (dev lets ops in; prod is isolated and closed to hosts; ops is open to hosts), a CNI container
 * per network per agent. The ping matrix between every pair of containers, on one agent and
 * across agents, matches the policy exactly; hosts reach containers as each network says; the
 * drop counters count the refused pairs; a policy published at run time (the masters restarted
 * with a new overlay) applies on both agents while an allowed TCP connection opened before it
 * keeps working.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import t from 'tap';
import { CNI_PLUGIN_DIR, NetnsCluster, run, type ClusterNode } from '../../src/demo/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, netnsRequired } from '../helpers/netns.js';

const missing = [`${CNI_PLUGIN_DIR}/bridge`].filter((p) => !existsSync(p));
const kernelSkip = await kernelTestSkip();
const why = `the isolation test needs ${missing.join(', ')} (Debian package containernetworking-plugins)`;
if (kernelSkip === false && missing.length > 0 && netnsRequired()) throw new Error(why);
const skip = kernelSkip || (missing.length > 0 ? why : false);
const command = skip === false ? await lashupCommand() : [];

const NETWORKS = ['dev', 'prod', 'ops'] as const;
type Net = (typeof NETWORKS)[number];
const overlayWith = (prodAllowFrom: string[]): Record<string, unknown> => ({
  networks: [
    { name: 'dev', subnet: '10.1.0.0/16', prefix: 24, allowFrom: ['ops'] },
    { name: 'prod', subnet: '10.2.0.0/16', prefix: 24, allowHosts: false, allowFrom: prodAllowFrom },
    { name: 'ops', subnet: '10.3.0.0/16', prefix: 24 },
  ],
});

interface Ctr {
  net: Net;
  agent: string;
  ns: string;
  ip: string;
}

t.test('three networks on two agents: the ping matrix follows the policy, and a policy change applies at run time', { skip, timeout: 900_000 }, async (t) => {
  const cluster = await NetnsCluster.create({ agents: 2, command, prefix: 'lxi', overlay: overlayWith([]) });
  const children: ReturnType<typeof spawn>[] = [];
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await cluster.destroy();
  });
  t.ok(await cluster.converge(120_000), 'two agents leased and routed');
  const agents = ['a4', 'a5'].map((name) => cluster.nodes.get(name) as ClusterNode);
  const ctrs: Ctr[] = [];
  for (const a of agents) {
    for (const net of NETWORKS) {
      t.ok(await eventually(() => existsSync(`${a.dir}/net.d/${net}.conflist`), 30_000), `${a.name} wrote ${net}.conflist`);
      const out = await cluster.cni(a.name, 'ADD', `${a.name}-${net}`, net);
      t.equal(out.code, 0, `a ${net} container on ${a.name}${out.code === 0 ? '' : `: ${out.stderr}`}`);
      ctrs.push({ net, agent: a.name, ns: out.ns, ip: ((JSON.parse(out.stdout) as { ips: { address: string }[] }).ips[0]?.address ?? '').split('/')[0] as string });
    }
  }
  const ping = async (ns: string, ip: string): Promise<boolean> => (await run(['ip', 'netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', ip], 5000)).code === 0;
  /** Every ordered pair whose outcome differs from `allowed`: allowed ones get retries, refused ones two tries. */
  const mismatches = async (allowed: (from: Net, to: Net) => boolean): Promise<string[]> => {
    const out: string[] = [];
    for (const from of ctrs) {
      for (const to of ctrs) {
        if (from === to) continue;
        const want = from.net === to.net || allowed(from.net, to.net);
        const got = want ? await eventually(() => ping(from.ns, to.ip), 10_000, 200) : (await ping(from.ns, to.ip)) || (await ping(from.ns, to.ip));
        if (got !== want) out.push(`${from.net}@${from.agent} -> ${to.net}@${to.agent}: ${got ? 'reached' : 'refused'}, expected ${want ? 'reached' : 'refused'}`);
      }
    }
    return out;
  };
  t.same(await mismatches((from, to) => to === 'dev' && from === 'ops'), [], 'the ping matrix (same agent and across agents) matches the policy: only ops -> dev besides each network itself');

  // Hosts: an agent reaches its own and the other agent's dev and ops containers, not prod's.
  for (const a of agents) {
    for (const c of ctrs) {
      const want = c.net !== 'prod';
      const got = want ? await eventually(() => ping(a.host.ns, c.ip), 10_000, 200) : await ping(a.host.ns, c.ip);
      t.equal(got, want, `host ${a.name} -> ${c.net}@${c.agent}: ${want ? 'reached' : 'refused'}`);
    }
  }
  const policy = async (agent: string): Promise<{ networks: { name: string; allowFrom: string[] }[]; dropped: Record<string, Record<string, number>> }> =>
    JSON.parse((await cluster.cli(agent, ['policy'])).stdout) as { networks: { name: string; allowFrom: string[] }[]; dropped: Record<string, Record<string, number>> };
  const p5 = await policy('a5');
  t.ok((p5.dropped['dev']?.['prod'] ?? 0) > 0, `a5 counted dev -> prod drops (${p5.dropped['dev']?.['prod']})`);
  t.ok((p5.dropped['hosts']?.['prod'] ?? 0) > 0, 'and hosts -> prod');
  t.equal(p5.dropped['ops']?.['dev'], undefined, 'an allowed pair has no drop counter');
  const metrics = await cluster.apiGet('a5', '/metrics');
  t.match(metrics, /^lashup_firewall_dropped_packets_total\{from="dev",to="prod"\} [1-9]/m, '/metrics counts the refused pair');

  // An allowed TCP connection (ops on a4 -> dev on a5) stays up across a policy change.
  const devA5 = ctrs.find((c) => c.net === 'dev' && c.agent === 'a5') as Ctr;
  const opsA4 = ctrs.find((c) => c.net === 'ops' && c.agent === 'a4') as Ctr;
  const server = spawn('ip', ['netns', 'exec', devA5.ns, process.execPath, '-e', "require('net').createServer((s) => s.pipe(s)).listen(7000)"], { stdio: 'ignore' });
  children.push(server);
  await eventually(async () => (await run(['ip', 'netns', 'exec', devA5.ns, 'ss', '-ltn'])).stdout.includes(':7000'), 10_000, 100);
  const clientScript = `const s = require('net').connect(7000, '${devA5.ip}'); let n = 0; s.on('data', () => { n++; process.stdout.write('echo ' + n + '\\n'); }); const timer = setInterval(() => s.write('x'), 100); s.on('close', () => { clearInterval(timer); process.stdout.write('closed\\n'); }); setTimeout(() => process.exit(0), 120000);`;
  const client = spawn('ip', ['netns', 'exec', opsA4.ns, process.execPath, '-e', clientScript], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(client);
  let echoes = 0;
  let closed = false;
  client.stdout?.on('data', (c: Buffer) => {
    for (const line of c.toString().split('\n')) {
      if (line.startsWith('echo ')) echoes = Number(line.slice(5));
      if (line === 'closed') closed = true;
    }
  });
  t.ok(await eventually(() => echoes > 5, 10_000, 100), 'an ops -> dev TCP connection carries data');

  // The masters publish a new policy: prod now lets dev in. Restarted one by one, a new leader
  // commits its configuration.
  for (const m of ['m1', 'm2', 'm3']) await cluster.restart(m, overlayWith(['dev']));
  const changedAt = Date.now();
  t.ok(
    await eventually(
      async () => (await Promise.all(['a4', 'a5'].map((a) => policy(a).catch(() => undefined)))).every((p) => p?.networks.find((n) => n.name === 'prod')?.allowFrom.includes('dev') === true),
      120_000,
      200,
    ),
    'both agents hold the new policy',
  );
  t.comment(`new policy on both agents ${Date.now() - changedAt} ms after the masters restarted`);
  const heldAt = Date.now();
  const devA4 = ctrs.find((c) => c.net === 'dev' && c.agent === 'a4') as Ctr;
  const prodA5 = ctrs.find((c) => c.net === 'prod' && c.agent === 'a5') as Ctr;
  const prodA4 = ctrs.find((c) => c.net === 'prod' && c.agent === 'a4') as Ctr;
  t.ok(await eventually(async () => (await ping(devA4.ns, prodA5.ip)) && (await ping(devA5.ns, prodA4.ip)), 2000, 100), 'within 2 s, dev reaches prod on both agents');
  t.comment(`dev -> prod reached ${Date.now() - heldAt} ms after the agents held the new policy`);
  const before = echoes;
  t.ok(await eventually(() => echoes > before + 5, 10_000, 100), 'the TCP connection opened before the change still carries data');
  t.notOk(closed, 'and was never closed');
  t.same(await mismatches((from, to) => (to === 'dev' && from === 'ops') || (to === 'prod' && from === 'dev')), [], 'the whole matrix follows the new policy');
  client.kill('SIGKILL');
  server.kill('SIGKILL');
});
