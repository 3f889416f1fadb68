/**
 * A rolling restart (an upgrade, one agent at a time) keeps containers reachable (issue 23).
 * 3 masters and 3 agents, a CNI container on each; each container pings the next agent's
 * container five times a second while every agent is restarted in turn: SIGTERM (the graceful
 * leave systemd sends), a new process, and the next agent only once this one reports ready
 * again and every agent routes to every other.
 *
 * The bar: no more pings lost than were in flight at each restart. A ping is in flight for its
 * round trip, well under a millisecond on veth and VXLAN, so at most one per pinger per restart:
 * the kernel keeps routing while the daemon is away (the reconciler adopts the routes it finds
 * at start and sends nothing when they are right). The counts are reported as test comments.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import t from 'tap';
import { CNI_PLUGIN_DIR, NetnsCluster } from '../../src/demo/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, netnsRequired, run } from '../helpers/netns.js';

const missing = [`${CNI_PLUGIN_DIR}/bridge`].filter((p) => !existsSync(p));
const kernelSkip = await kernelTestSkip();
const why = `the rolling restart test needs ${missing.join(', ')} (Debian package containernetworking-plugins)`;
if (kernelSkip === false && missing.length > 0 && netnsRequired()) throw new Error(why);
const skip = kernelSkip || (missing.length > 0 ? why : false);
const command = skip === false ? await lashupCommand() : [];

const INTERVAL_S = 0.2;
/** Upper bound on pings per pinger (the run stops them earlier): 300 s at five a second. */
const MAX_PINGS = 1500;

interface Pinger {
  from: string;
  to: string;
  child: ChildProcess;
  output: string;
}

t.test('a rolling restart of every agent while containers ping each other', { skip, timeout: 600_000 }, async (t) => {
  const cluster = await NetnsCluster.create({ agents: 3, command, prefix: 'lxr' });
  const pingers: Pinger[] = [];
  t.teardown(async () => {
    for (const p of pingers) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await cluster.destroy();
  });
  t.ok(await cluster.converge(120_000), 'three agents leased and routed');
  const agents = cluster.agents.map((a) => a.name);
  for (const agent of agents) {
    const added = await cluster.cni(agent, 'ADD', `rr-${agent}`);
    t.equal(added.code, 0, `a container on ${agent}: ${added.stderr}`);
  }
  const containers = cluster.containers;
  t.equal(containers.length, 3);
  // Reachable before anything happens (ARP resolved, routes in place).
  for (let i = 0; i < containers.length; i++) {
    const from = containers[i];
    const to = containers[(i + 1) % containers.length];
    if (from === undefined || to === undefined) continue;
    const reached = await eventually(async () => (await run(['ip', 'netns', 'exec', from.ns, 'ping', '-c', '1', '-W', '1', to.ip], 5000)).code === 0, 30_000);
    t.ok(reached, `${from.agent} -> ${to.agent} reachable before the restarts`);
  }

  for (let i = 0; i < containers.length; i++) {
    const from = containers[i];
    const to = containers[(i + 1) % containers.length];
    if (from === undefined || to === undefined) continue;
    const child = spawn('ip', ['netns', 'exec', from.ns, 'ping', '-n', '-i', String(INTERVAL_S), '-c', String(MAX_PINGS), '-W', '1', to.ip], { stdio: ['ignore', 'pipe', 'pipe'] });
    const pinger: Pinger = { from: from.agent, to: to.agent, child, output: '' };
    child.stdout?.on('data', (c: Buffer) => {
      // Only the summary matters; keep the tail.
      pinger.output = (pinger.output + c.toString()).slice(-4000);
    });
    pingers.push(pinger);
  }
  // A second of pings before the first restart.
  await new Promise((r) => setTimeout(r, 1000));

  const restarts: { agent: string; readyMs: number }[] = [];
  for (const agent of agents) {
    const startedAt = performance.now();
    await cluster.restart(agent);
    const ready = await eventually(async () => {
      try {
        const status = JSON.parse((await cluster.api(agent, 'GET', '/v1/status', 2000)).body) as { ready?: boolean };
        return status.ready === true;
      } catch {
        return false;
      }
    }, 60_000);
    t.ok(ready, `${agent} ready again after its restart`);
    t.ok(await cluster.converge(60_000), `every agent routes to every other after ${agent}'s restart`);
    restarts.push({ agent, readyMs: Math.round(performance.now() - startedAt) });
  }
  await new Promise((r) => setTimeout(r, 1000));

  // SIGINT: ping prints its summary and exits.
  const summaries = await Promise.all(
    pingers.map(
      (p) =>
        new Promise<{ pinger: Pinger; sent: number; received: number }>((resolve) => {
          const done = (): void => {
            const m = /(\d+) packets transmitted, (\d+) received/.exec(p.output);
            resolve({ pinger: p, sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) });
          };
          // 'close', not 'exit': the summary may still sit in the pipe when the process has exited
          // (CI once read 0 pings from a pinger that had sent 69).
          if (p.child.exitCode !== null && p.child.stdout?.readableEnded !== false) return done();
          p.child.once('close', done);
          p.child.kill('SIGINT');
        }),
    ),
  );
  t.comment(`restarts (SIGTERM -> ready again): ${restarts.map((r) => `${r.agent} ${r.readyMs} ms`).join(', ')}`);
  for (const s of summaries) {
    const lost = s.sent - s.received;
    t.comment(`${s.pinger.from} -> ${s.pinger.to}: ${s.sent} sent, ${s.received} received, ${lost} lost`);
    t.ok(s.sent >= restarts.length * 5, `${s.pinger.from} -> ${s.pinger.to} pinged throughout (${s.sent} pings)`);
    t.ok(lost <= restarts.length, `${s.pinger.from} -> ${s.pinger.to}: ${lost} lost, at most the ${restarts.length} that can be in flight at the restarts`);
  }
});
