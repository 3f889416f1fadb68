/**
 * VIPs on a real cluster (issue 21): 3 masters and 3 agents in namespaces; on each agent a
 * backend container (attached through the bridge plugin, its task and VIPs in CNI_ARGS) and a
 * client container. The named VIP /web:80 gets its address from the masters; clients on every
 * agent open 300 connections through its DNS name and its address, all answered and spread
 * over the three backends; a backend calls the VIP it backs (hairpin); an address VIP and a
 * UDP VIP answer. Then, over several trials, one backend's agent is SIGKILLed: the time until
 * every surviving agent's kernel rules have dropped its backend is measured (reported, not
 * asserted: no timing threshold in a test), new connections succeed on the others, and an
 * established connection to a surviving backend stays up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CNI_PLUGIN_DIR, NetnsCluster, run } from '../../src/demo/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, netnsRequired } from '../helpers/netns.js';

const needs = [`${CNI_PLUGIN_DIR}/bridge`];
const missing = needs.filter((p) => !existsSync(p));
const kernelSkip = await kernelTestSkip();
const why = `the VIP kernel test needs ${missing.join(', ')} (Debian package containernetworking-plugins)`;
if (kernelSkip === false && missing.length > 0 && netnsRequired()) throw new Error(why);
const skip = kernelSkip || (missing.length > 0 ? why : false);
const command = skip === false ? await lashupCommand() : [];
const ZONE = 'dcos.thisdcos.directory';
const helper = (name: string): string => fileURLToPath(new URL(`../helpers/${name}`, import.meta.url));
const ADDRESS_VIP = '198.18.0.10';
const TRIALS = 3;

interface ClientResult {
  answers: string[];
  ms: number[];
}

/** Runs the VIP client in a container namespace (bounded by its own per-connection timeouts). */
async function client(ns: string, options: Record<string, unknown>): Promise<ClientResult> {
  const out = await run(['ip', 'netns', 'exec', ns, process.execPath, helper('vip-client.mjs'), JSON.stringify(options)], 120_000);
  return JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '{"answers":[],"ms":[]}') as ClientResult;
}

const tally = (answers: string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const a of answers) out[a] = (out[a] ?? 0) + 1;
  return out;
};

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
};

t.test('a named VIP on three agents: 300 connections spread, hairpin, address and UDP VIPs, failed backends leave every agent', { skip, timeout: 900_000 }, async (t) => {
  const cluster = await NetnsCluster.create({ agents: 3, command, prefix: 'lxw' });
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await cluster.destroy();
  });
  t.ok(await cluster.converge(120_000), 'three agents leased and routed');
  const agents = ['a4', 'a5', 'a6'];
  const hostOf = (agent: string): number => Number(agent.slice(1));

  // A backend and a client container on every agent.
  const backends = new Map<string, { ns: string; ip: string; resolver: string }>();
  const clients = new Map<string, { ns: string; resolver: string }>();
  for (const agent of agents) {
    const b = await cluster.cni(
      agent,
      'ADD',
      `web-${agent}`,
      'dcos',
      `IgnoreUnknown=1;LASHUP_TASK=web-${agent};LASHUP_FRAMEWORK=shop;LASHUP_VIPS=/web:80:8080,${ADDRESS_VIP}:5000:8080,/echo:53:5353/udp`,
    );
    t.equal(b.code, 0, `backend on ${agent}${b.code === 0 ? '' : `: ${b.stdout} ${b.stderr}`}`);
    const c = await cluster.cni(agent, 'ADD', `client-${agent}`, 'dcos');
    t.equal(c.code, 0, `client on ${agent}`);
    if (b.code !== 0 || c.code !== 0) return;
    const result = JSON.parse(b.stdout) as { ips: { address: string; gateway: string }[] };
    const resolver = result.ips[0]?.gateway as string;
    backends.set(agent, { ns: b.ns, ip: result.ips[0]?.address.split('/')[0] as string, resolver });
    clients.set(agent, { ns: c.ns, resolver: (JSON.parse(c.stdout) as { ips: { gateway: string }[] }).ips[0]?.gateway as string });
    const server = spawn('ip', ['netns', 'exec', b.ns, process.execPath, helper('vip-backend.mjs'), `web-${agent}`, '8080', '5353', '600000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    const up = await new Promise<boolean>((resolve) => {
      server.stdout?.once('data', () => resolve(true));
      server.once('exit', () => resolve(false));
    });
    t.ok(up, `backend web-${agent} listens`);
  }

  // The VIP's address, from the masters, on every agent with its three backends.
  type VipView = {
    vips: { name?: string; dns?: string; address: string; port: number; protocol: string; backends: { ip: string; agent: string; connections: number | null }[] }[];
    rules: { converged: boolean } | null;
  };
  const view = async (agent: string): Promise<VipView> => JSON.parse(await cluster.apiGet(agent, '/v1/vips')) as VipView;
  const webVip = (v: VipView) => v.vips.find((x) => x.name === 'web.shop' && x.address.includes('.'));
  t.ok(
    await eventually(
      async () => {
        for (const agent of agents) {
          const v = await view(agent);
          if (v.rules?.converged !== true || (webVip(v)?.backends.length ?? 0) !== 3) return false;
        }
        return true;
      },
      60_000,
      250,
    ),
    'every agent programs web.shop with three backends',
  );
  const first = await view('a4');
  const vipIp = webVip(first)?.address as string;
  t.match(vipIp, /^11\./, `the named VIP's address comes from 11.0.0.0/8 (${vipIp})`);
  t.equal(webVip(first)?.dns, `web.shop.l4lb.${ZONE}`);
  for (const agent of ['a5', 'a6']) t.equal(webVip(await view(agent))?.address, vipIp, `${agent} has the same address`);
  const dig = await run(
    ['ip', 'netns', 'exec', clients.get('a5')?.ns as string, '/usr/bin/dig', `@${clients.get('a5')?.resolver}`, `web.shop.l4lb.${ZONE}`, 'A', '+short', '+tries=1', '+timeout=4'],
    15_000,
  );
  if (existsSync('/usr/bin/dig')) t.equal(dig.stdout.trim(), vipIp, 'the DNS name answers the VIP address');

  // 300 connections: 100 from each agent's client, every other one through the DNS name.
  const all: string[] = [];
  for (const agent of agents) {
    const c = clients.get(agent) as { ns: string; resolver: string };
    const r = await client(c.ns, { host: vipIp, port: 80, count: 100, name: `web.shop.l4lb.${ZONE}`, resolver: c.resolver });
    all.push(...r.answers);
    t.equal(r.answers.filter((a) => a.startsWith('error')).length, 0, `${agent}: all 100 connections answered (${JSON.stringify(tally(r.answers))})`);
  }
  const spread = tally(all);
  t.equal(all.length, 300);
  for (const agent of agents) t.ok((spread[`web-${agent}`] ?? 0) >= 60, `web-${agent} got at least 20 % of the 300 connections (${spread[`web-${agent}`] ?? 0})`);
  const counted = await Promise.all(agents.map(async (a) => (webVip(await view(a))?.backends ?? []).reduce((s, b) => s + (b.connections ?? 0), 0)));
  t.equal(
    counted.reduce((s, n) => s + n, 0),
    300,
    `the agents' per-backend counters add up to the 300 connections (${counted.join(' + ')})`,
  );

  // Hairpin: a4's backend calls the VIP it backs; some connections come back to itself.
  const hair = await client(backends.get('a4')?.ns as string, { host: vipIp, port: 80, count: 30 });
  t.equal(hair.answers.filter((a) => a.startsWith('error')).length, 0, `hairpin: all 30 answered (${JSON.stringify(tally(hair.answers))})`);
  t.ok((tally(hair.answers)['web-a4'] ?? 0) > 0, 'including by itself');
  // The address VIP and the UDP VIP.
  const address = await client(clients.get('a6')?.ns as string, { host: ADDRESS_VIP, port: 5000, count: 30 });
  t.equal(address.answers.filter((a) => a.startsWith('error')).length, 0, `the address VIP ${ADDRESS_VIP}:5000 answers (${JSON.stringify(tally(address.answers))})`);
  t.ok(Object.keys(tally(address.answers)).length > 1, 'spread too');
  const echoVip = (await view('a5')).vips.find((x) => x.name === 'echo.shop' && x.protocol === 'udp')?.address as string;
  const udp = await client(clients.get('a5')?.ns as string, { host: echoVip, port: 53, count: 30, protocol: 'udp' });
  t.equal(udp.answers.filter((a) => a.startsWith('error')).length, 0, `the UDP VIP ${echoVip}:53 answers (${JSON.stringify(tally(udp.answers))})`);

  // Failure trials: SIGKILL an agent whose backend does not hold the established connection.
  const removal: number[] = [];
  const afterDeclared: number[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    const holder = spawn('ip', ['netns', 'exec', clients.get('a4')?.ns as string, process.execPath, helper('vip-holder.mjs'), vipIp, '80', '300000'], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(holder);
    const lines: string[] = [];
    let wake: (() => void) | undefined;
    holder.stdout?.on('data', (d: Buffer) => {
      lines.push(...d.toString().trim().split('\n'));
      wake?.();
    });
    const nextLine = async (what: string): Promise<string> => {
      const deadline = Date.now() + 10_000;
      while (lines.length === 0 && Date.now() < deadline)
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 500);
        });
      const line = lines.shift();
      if (line === undefined) throw new Error(`no line from the held connection: ${what}`);
      return line;
    };
    const held = await nextLine('the first line');
    const heldAgent = held.replace(/^web-/, '');
    const victim = agents.find((a) => a !== heldAgent && a !== 'a4') as string;
    const victimIp = backends.get(victim)?.ip as string;
    const survivors = agents.filter((a) => a !== victim);
    const node = cluster.nodes.get(victim);
    const exited = new Promise((r) => node?.child?.once('exit', r));
    const killedAt = performance.now();
    node?.child?.kill('SIGKILL');
    await exited;
    // Every surviving agent's kernel: the victim's backend leaves the VIP table. Alongside, when
    // a4's membership first suspects the victim (backends leave with the suspicion,
    // vips.ejectSuspect) or declares it failed: the split between detection and the rules.
    const gone = new Map<string, number>();
    let declaredMs: number | undefined;
    // Its own loop (every 20 ms, at most 20 s), so that the rules' poll does not hide it.
    const suspected = eventually(
      async () => {
        const list = JSON.parse(await cluster.apiGet('a4', '/v1/members')) as { name: string; state: string }[];
        if (list.some((m) => m.name === victim && m.state !== 'alive')) declaredMs = performance.now() - killedAt;
        return declaredMs !== undefined;
      },
      20_000,
      20,
    );
    await eventually(
      async () => {
        await Promise.all(
          survivors
            .filter((a) => !gone.has(a))
            .map(async (a) => {
              const listing = await run(['ip', 'netns', 'exec', cluster.net.host(hostOf(a)).ns, 'nft', 'list', 'table', 'ip', 'lashup_vips']);
              if (listing.code === 0 && !listing.stdout.includes(`${victimIp}:8080`)) gone.set(a, performance.now() - killedAt);
            }),
        );
        return gone.size === survivors.length;
      },
      60_000,
      50,
    );
    await suspected;
    t.equal(gone.size, survivors.length, `trial ${trial + 1}: ${victim}'s backend left every surviving agent's rules`);
    const slowest = Math.max(...gone.values());
    removal.push(slowest);
    if (declaredMs !== undefined) afterDeclared.push(slowest - declaredMs);
    t.comment(
      `trial ${trial + 1}: SIGKILL ${victim} -> suspected by a4 after ${declaredMs?.toFixed(0) ?? '?'} ms; its backend gone from ${[...gone].map(([a, ms]) => `${a} at ${ms.toFixed(0)} ms`).join(', ')}`,
    );
    const after = await client(clients.get('a4')?.ns as string, { host: vipIp, port: 80, count: 30 });
    t.equal(after.answers.filter((a) => a.startsWith('error')).length, 0, `trial ${trial + 1}: new connections succeed (${JSON.stringify(tally(after.answers))})`);
    t.equal(tally(after.answers)[`web-${victim}`] ?? 0, 0, 'and none goes to the failed agent');
    holder.stdin?.write('ping\n');
    t.equal(await nextLine('the answer to ping'), `${held}:ping`, `trial ${trial + 1}: the established connection to ${held} is still up`);
    holder.kill('SIGKILL');
    // The agent comes back with its container (restored from its lease file): its backend returns everywhere.
    cluster.start(victim, hostOf(victim));
    t.ok(
      await eventually(
        async () => {
          for (const a of agents) if ((webVip(await view(a).catch(() => ({ vips: [], rules: null })))?.backends.length ?? 0) !== 3) return false;
          return true;
        },
        90_000,
        250,
      ),
      `trial ${trial + 1}: ${victim} restarted, its backend is back on every agent`,
    );
  }
  t.comment(
    `SIGKILL -> backend gone from every surviving agent's rules over ${TRIALS} trials: p50 ${percentile(removal, 50).toFixed(0)} ms, p99 ${percentile(removal, 99).toFixed(0)} ms (issue 21 target: 2,000 ms)`,
  );
  t.comment(
    `of which after a4's membership suspected the agent: p50 ${percentile(afterDeclared, 50).toFixed(0)} ms, p99 ${percentile(afterDeclared, 99).toFixed(0)} ms (the rest is failure detection; the 20 ms poll of a4's members makes this an upper bound)`,
  );
  t.equal(removal.length, TRIALS);
});
