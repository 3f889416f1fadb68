/**
 * Issue 14, item 4: silent TCP connections must not keep new members out. A master, an attacker
 * host and new agents in network namespaces; the attacker, from one address, (a) holds twelve
 * silent connections to the master's libp2p port and reopens each one the master closes, then
 * (b) opens two new silent connections every second. During each flood a new agent joins; the
 * time from its process start to "joined the cluster" is measured, next to a baseline join
 * without a flood in the same run. Before the fix the join in (a) took more than 50 s.
 *
 * The attacker loop is bounded in connections and time and stops by itself; everything runs in
 * namespaces this test creates and removes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateClusterKey } from '../../src/net/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, TestNet, type TestHost } from '../helpers/netns.js';

const skip = await kernelTestSkip();
const command = skip === false ? await lashupCommand() : [];

/** The attacker: node code run inside its namespace. Bounded: at most `seconds` and `maxConnections`. */
const ATTACKER = `
const net = require('node:net');
const [host, port, mode, seconds, maxConnections] = process.argv.slice(1);
const deadline = Date.now() + Number(seconds) * 1000;
let opened = 0, closedByPeer = 0;
const sockets = new Set();
const open = () => {
  if (Date.now() > deadline || opened >= Number(maxConnections)) return;
  opened++;
  const s = net.connect(Number(port), host);
  sockets.add(s);
  s.on('error', () => {});
  s.on('close', () => {
    sockets.delete(s);
    closedByPeer++;
    if (mode === 'hold') setTimeout(open, 50);
  });
};
if (mode === 'hold') for (let i = 0; i < 12; i++) open();
const tick = mode === 'trickle' ? setInterval(() => { open(); open(); }, 1000) : undefined;
const report = setInterval(() => process.stdout.write(JSON.stringify({ opened, closedByPeer, open: sockets.size }) + '\\n'), 1000);
setTimeout(() => {
  clearInterval(tick); clearInterval(report);
  for (const s of sockets) s.destroy();
  process.stdout.write(JSON.stringify({ opened, closedByPeer, done: true }) + '\\n');
  process.exit(0);
}, Number(seconds) * 1000);
`;

t.test('new agents join within seconds while one host floods the master with silent connections', { skip, timeout: 300_000 }, async (t) => {
  const net = await TestNet.create({ hosts: 6 });
  const root = mkdtempSync(join(tmpdir(), 'lashup-flood-'));
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await net.destroy();
    rmSync(root, { recursive: true, force: true });
  });
  const key = generateClusterKey();
  const master = net.host(1);
  const attacker = net.host(2);
  const startDaemon = (name: string, host: TestHost, role: 'master' | 'agent'): { child: ChildProcess; startedAt: number; log: () => string } => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const config = {
      name,
      role,
      underlayIp: host.ip,
      dataDir: join(dir, 'data'),
      masters: ['m1'],
      seeds: role === 'master' ? [] : [`${master.ip}:62502`],
      cluster: { keys: [key] },
      dataplane: { enabled: false },
      api: { socketPath: join(dir, 'api.sock') },
      log: { level: 'info' },
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    let log = '';
    const startedAt = Date.now();
    const child = spawn('ip', ['netns', 'exec', host.ns, ...command, 'run', '--config', join(dir, 'config.json')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LASHUP_LOG_LEVEL: 'info' },
    });
    child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    children.push(child);
    return { child, startedAt, log: () => log };
  };
  /** Milliseconds from the agent's process start to its "joined the cluster" line; undefined when it did not join within `ms`. */
  const joinTime = async (name: string, host: TestHost, ms: number): Promise<number | undefined> => {
    const agent = startDaemon(name, host, 'agent');
    const joined = await eventually(() => /"msg":"joined the cluster"/.test(agent.log()), ms, 50);
    if (!joined) {
      t.comment(`${name} log: ${agent.log().slice(-1500)}`);
      return undefined;
    }
    const line = agent
      .log()
      .split('\n')
      .find((l) => l.includes('"msg":"joined the cluster"')) as string;
    return (JSON.parse(line) as { time: number }).time - agent.startedAt;
  };
  const runAttacker = (mode: 'hold' | 'trickle', seconds: number): { child: ChildProcess; last: () => { opened: number; closedByPeer: number } } => {
    let last = { opened: 0, closedByPeer: 0 };
    const child = spawn('ip', ['netns', 'exec', attacker.ns, process.execPath, '-e', ATTACKER, master.ip, '62502', mode, String(seconds), '5000'], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout?.on('data', (c: Buffer) => {
      for (const line of c.toString().split('\n')) if (line.startsWith('{')) last = JSON.parse(line) as typeof last;
    });
    children.push(child);
    return { child, last: () => last };
  };

  const m1 = startDaemon('m1', master, 'master');
  t.ok(await eventually(() => /"msg":"node started"/.test(m1.log()), 30_000), 'the master started');

  const baseline = await joinTime('a3', net.host(3), 60_000);
  t.ok(baseline !== undefined, `baseline: an agent joins without a flood (${baseline} ms from process start)`);

  // (a) Twelve silent connections from one address, reopened as soon as the master closes one.
  const hold = runAttacker('hold', 60);
  t.ok(await eventually(() => hold.last().opened >= 12, 10_000), 'the attacker holds twelve silent connections');
  const underHold = await joinTime('a4', net.host(4), 55_000);
  t.ok(hold.child.exitCode === null, 'the flood was still running when the agent joined');
  t.ok(underHold !== undefined, `an agent joins during the twelve-connection flood (${underHold} ms from process start; before the fix > 50,000 ms)`);
  t.comment(`join from process start: baseline ${baseline} ms, twelve held silent connections ${underHold} ms (target < 2,000 ms)`);
  hold.child.kill('SIGTERM');

  // (b) Two new silent connections per second, never closed by the attacker.
  const trickle = runAttacker('trickle', 60);
  t.ok(await eventually(() => trickle.last().opened >= 12, 15_000), 'the attacker has opened a dozen silent connections');
  const underTrickle = await joinTime('a5', net.host(5), 55_000);
  t.ok(trickle.child.exitCode === null, 'the trickle was still running when the agent joined');
  t.ok(underTrickle !== undefined, `an agent joins during the two-per-second trickle (${underTrickle} ms; before the fix 8,200 ms)`);
  t.comment(`join from process start: two new silent connections per second ${underTrickle} ms (target < 2,000 ms)`);
  trickle.child.kill('SIGTERM');

  // The master counted what it refused, per host, and stayed up.
  t.ok(m1.child.exitCode === null, 'the master is still running');
});
