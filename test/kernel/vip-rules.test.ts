/**
 * The VIP rules (src/vips, a building block of issue 21) on a real kernel: an "agent" namespace
 * routing between a client subnet and a backend subnet applies `vipRuleset`; a client opens 60
 * TCP connections to the VIP (all answered, spread over the three backends, counted per
 * backend), a backend reaches the VIP it backs itself (hairpin), a UDP VIP answers, and a VIP
 * without backends refuses at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { must, run, TestNet } from '../../src/demo/index.js';
import { parseVipCounters, vipRuleset } from '../../src/vips/index.js';
import { kernelTestSkip } from '../helpers/netns.js';

const skip = await kernelTestSkip();

/** A TCP server on 8080 and a UDP one on 5353 answering `name`; prints `ready` once both listen; ends by itself after 120 s. */
const server = (name: string): string =>
  `const n=${JSON.stringify(name)};let up=0;const ready=()=>{if(++up===2)console.log('ready')};require('net').createServer((c)=>c.end(n)).listen(8080,ready);` +
  `const u=require('dgram').createSocket('udp4');u.on('message',(m,r)=>u.send(n,r.port,r.address));u.bind(5353,ready);setTimeout(()=>process.exit(0),120000);`;

/** Opens `count` TCP connections one after another to ip:port; prints the answers as JSON. */
const client = (ip: string, port: number, count: number): string =>
  `const net=require('net');const out=[];const one=(i)=>{if(i===${count}){console.log(JSON.stringify(out));return;}` +
  `const c=net.connect(${port},'${ip}');let d='';c.setTimeout(3000,()=>c.destroy());c.on('data',(x)=>d+=x);` +
  `c.on('error',(e)=>d='error:'+e.code);c.on('close',()=>{out.push(d||'none');one(i+1);});};one(0);`;

t.test('VIP rules: 60 connections spread over 3 backends, counted; hairpin; UDP; no backends refuse', { skip, timeout: 120_000 }, async (t) => {
  const net = await TestNet.create({ hosts: 5, prefix: 'lxv' });
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'lashup-vip-'));
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await net.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const [agent, b1, b2, b3, cl] = [1, 2, 3, 4, 5].map((i) => net.host(i)) as [ReturnType<typeof net.host>, ...ReturnType<typeof net.host>[]];
  if (b1 === undefined || b2 === undefined || b3 === undefined || cl === undefined) throw new Error('hosts');
  // The client lives in another subnet, so the backends' replies go back through the agent.
  await must(['ip', '-n', agent.ns, 'addr', 'add', '198.51.100.1/24', 'dev', 'eth0']);
  await must(['ip', 'netns', 'exec', agent.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await must(['ip', '-n', cl.ns, 'addr', 'flush', 'dev', 'eth0']);
  await must(['ip', '-n', cl.ns, 'addr', 'add', '198.51.100.10/24', 'dev', 'eth0']);
  await must(['ip', '-n', cl.ns, 'route', 'add', '11.0.0.0/8', 'via', '198.51.100.1']);
  for (const b of [b1, b2, b3]) await must(['ip', '-n', b.ns, 'route', 'add', '198.51.100.0/24', 'via', agent.ip]);
  for (const b of [b1, b2, b3]) await must(['ip', '-n', b.ns, 'route', 'add', '11.0.0.0/8', 'via', agent.ip]);

  const backends = [b1, b2, b3].map((b) => ({ ip: b.ip, port: 8080 }));
  const rules = vipRuleset(
    [
      { address: '11.0.0.1', port: 80, protocol: 'tcp', backends },
      { address: '11.0.0.1', port: 53, protocol: 'udp', backends: [{ ip: b2.ip, port: 5353 }] },
      { address: '11.0.0.2', port: 80, protocol: 'tcp', backends: [] },
    ],
    { hairpinSubnets: ['192.0.2.0/24'] },
  );
  const script = join(dir, 'vips.nft');
  writeFileSync(script, rules.script);
  await must(['ip', 'netns', 'exec', agent.ns, 'nft', '-f', script]);
  for (const [i, b] of [b1, b2, b3].entries()) {
    const child = spawn('ip', ['netns', 'exec', b.ns, process.execPath, '-e', server(`b${i + 1}`)], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    // Listening: the server says so (bounded by the test's timeout; an exit fails at once).
    const up = await new Promise<boolean>((resolve) => {
      child.stdout?.once('data', () => resolve(true));
      child.once('exit', () => resolve(false));
    });
    t.ok(up, `backend ${b.ip} listens`);
  }

  const answers = JSON.parse((await must(['ip', 'netns', 'exec', cl.ns, process.execPath, '-e', client('11.0.0.1', 80, 60)], 60_000)).trim()) as string[];
  const byBackend = (list: string[]): Record<string, number> =>
    Object.fromEntries(['b1', 'b2', 'b3', 'other'].map((n) => [n, list.filter((a) => (n === 'other' ? !/^b[123]$/.test(a) : a === n)).length]));
  const spread = byBackend(answers);
  t.equal(spread['other'], 0, `every connection answered by a backend (${JSON.stringify(spread)})`);
  t.ok((spread['b1'] ?? 0) > 0 && (spread['b2'] ?? 0) > 0 && (spread['b3'] ?? 0) > 0, 'spread over all three backends');

  // Hairpin: b1 calls the VIP it backs (some connections land on itself).
  const hair = byBackend(JSON.parse((await must(['ip', 'netns', 'exec', b1.ns, process.execPath, '-e', client('11.0.0.1', 80, 30)], 60_000)).trim()) as string[]);
  t.equal(hair['other'], 0, `a backend reaches its own VIP every time (${JSON.stringify(hair)})`);
  t.ok((hair['b1'] ?? 0) > 0 && (hair['b2'] ?? 0) + (hair['b3'] ?? 0) > 0, 'on itself and on the others');

  // Counters: one per backend, every new connection counted once.
  const counters = parseVipCounters(await must(['ip', 'netns', 'exec', agent.ns, 'nft', 'list', 'table', 'ip', 'lashup_vips']));
  const tcpChains = rules.counters.filter((c) => c.vip === '11.0.0.1:80').map((c) => c.chain);
  t.equal(
    tcpChains.reduce((sum, c) => sum + (counters[c] ?? 0), 0),
    90,
    'the backends counted 90 connections',
  );

  // UDP VIP.
  const udp = await run(
    [
      'ip',
      'netns',
      'exec',
      cl.ns,
      process.execPath,
      '-e',
      `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});s.send('hi',53,'11.0.0.1');setTimeout(()=>process.exit(1),3000);`,
    ],
    10_000,
  );
  t.equal(udp.stdout.trim(), 'b2', 'a UDP VIP answers from its backend');

  // No backends: refused at once (not a timeout).
  const refused = JSON.parse((await must(['ip', 'netns', 'exec', cl.ns, process.execPath, '-e', client('11.0.0.2', 80, 1)], 20_000)).trim()) as string[];
  t.match(refused[0], /^error:ECONNREFUSED$/, 'a VIP without backends refuses');
});
