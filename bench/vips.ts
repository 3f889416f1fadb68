/**
 * VIPs (issue 21), on 3 masters and 16 agents as real daemons in network namespaces (this
 * benchmark creates and removes them), two parts:
 *
 * Throughput: a client container on one agent opens TCP connections (16 in progress, each:
 * connect, read the backend's first line, reset) to a backend container on another agent,
 * directly to the backend's address and port and through a named VIP whose only backend it
 * is, rounds interleaved (direct, VIP, direct, ...), each after a warm-up. The ratio of the
 * medians is the cost of the VIP's DNAT and conntrack on the client's agent.
 *
 * Propagation: trial after trial a backend is added to (then removed from) a named VIP through
 * one agent's tasks API; every agent records when its kernel rules took the change (the VIP
 * syncer's apply, `GET /v1/vips?changes=1`), and the figure is the time from the API call to
 * the last of the 16 agents. Agents are polled every 100 ms only to learn that they are done;
 * the times come from their own records (one clock: one machine).
 *
 * Needs root and the reference CNI plugins (Debian package containernetworking-plugins).
 */
import '../src/polyfills.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CNI_PLUGIN_DIR, NetnsCluster, run } from '../src/demo/index.js';
import { daemonCommand, stopForProfiles } from './lib/daemon-command.js';
import { idleCpuMsPerSec as idleCpuRate, treeCpuMs } from './lib/proc-cpu.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';

const here = dirname(fileURLToPath(import.meta.url));
/** How often the propagation trials ask the agents for their rule changes, ms. */
const POLL_MS = 250;
/** The quiet window before the trials in which the daemons' idle CPU is read, ms. */
const IDLE_WINDOW_MS = 10_000;
/** The backend the kernel test uses too (test/helpers: the repository is where benchmarks run). */
const BACKEND = join(here, '..', '..', 'test', 'helpers', 'vip-backend.mjs');
const ZONE = 'dcos.thisdcos.directory';

interface Change {
  atMs: number;
  /** When the agent's desired VIPs changed: the store's news had arrived and been built. */
  wantedAtMs: number;
  vip: string;
  backend: string;
  change: 'added' | 'removed';
}

/** An HTTP call to a node's API over its Unix socket. */
function api(cluster: NetnsCluster, name: string, method: string, path: string): Promise<{ status: number; body: string }> {
  const node = cluster.nodes.get(name);
  if (node === undefined) return Promise.reject(new Error(`no node ${name}`));
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(node.dir, 'api.sock'), method, path, headers: { host: 'localhost' }, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} on ${name} timed out`)));
    req.end();
  });
}

/**
 * Follows the `tasks` key on a node (`GET /v1/kv/tasks?watch=1`), noting when each event
 * arrived: when the store of that node got a change, apart from when its rules took it.
 */
function watchTasks(cluster: NetnsCluster, name: string, events: { atMs: number; data: string }[]): () => void {
  const node = cluster.nodes.get(name);
  if (node === undefined) throw new Error(`no node ${name}`);
  const req = request({ socketPath: join(node.dir, 'api.sock'), path: '/v1/kv/tasks?watch=1', headers: { host: 'localhost' } }, (res) => {
    let buffer = '';
    res.on('data', (c: Buffer) => {
      const atMs = Date.now();
      buffer += c.toString();
      const parts = buffer.split('\n\n');
      buffer = parts.pop() ?? '';
      for (const p of parts) events.push({ atMs, data: p });
      // Bounded: the bench keeps only the last 400 events per node.
      if (events.length > 400) events.splice(0, events.length - 400);
    });
  });
  req.on('error', () => undefined);
  req.end();
  return () => req.destroy();
}

async function load(ns: string, host: string, port: number, durationMs: number): Promise<{ completed: number; errors: number; p50Ms: number; p99Ms: number }> {
  const out = await run(['ip', 'netns', 'exec', ns, process.execPath, join(here, 'lib', 'vip-load.js'), JSON.stringify({ host, port, concurrency: 16, durationMs })], durationMs + 30_000);
  if (out.code !== 0) throw new Error(`the load generator failed: ${out.stderr}`);
  return JSON.parse(out.stdout.trim()) as { completed: number; errors: number; p50Ms: number; p99Ms: number };
}

const bench: Benchmark = {
  name: 'vips',
  description:
    'connections/s through a named VIP vs directly to its backend (same run, interleaved rounds); a backend change reaching the kernel rules of every agent (real daemons in network namespaces)',
  async run({ quick, sizes, log }): Promise<BenchResult> {
    if (!existsSync(`${CNI_PLUGIN_DIR}/bridge`)) throw new Error(`the vips benchmark needs ${CNI_PLUGIN_DIR}/bridge (Debian package containernetworking-plugins)`);
    if (process.getuid?.() !== 0) throw new Error('the vips benchmark needs root (network namespaces)');
    const agents = sizes?.[0] ?? (quick ? 4 : 16);
    // Five rounds: single rounds on 2 shared cores vary by ±30 % (a round that meets other load).
    const rounds = quick ? 1 : 5;
    const seconds = quick ? 3 : 6;
    const trials = quick ? 4 : 20;
    const command = daemonCommand();
    const startedMs = Date.now();
    const cluster = await NetnsCluster.create({ agents, command, prefix: 'lxb' });
    const children: ChildProcess[] = [];
    try {
      if (!(await cluster.converge(300_000))) throw new Error(`${agents} agents did not converge within 300 s`);
      const formationMs = Date.now() - startedMs;
      const names = cluster.agents.map((a) => a.name);
      const [clientAgent, backendAgent] = names as [string, string];
      log(`${agents} agents formed in ${round(formationMs / 1000)} s; throughput: client on ${clientAgent}, backend on ${backendAgent}`);

      // Throughput: one backend behind /one:80 (its 8080), the client on another agent.
      const backend = await cluster.cni(backendAgent, 'ADD', 'one', 'dcos', 'IgnoreUnknown=1;LASHUP_TASK=one;LASHUP_FRAMEWORK=bench;LASHUP_VIPS=/one:80:8080');
      const client = await cluster.cni(clientAgent, 'ADD', 'load', 'dcos');
      if (backend.code !== 0 || client.code !== 0) throw new Error(`containers not attached: ${backend.stdout} ${client.stdout}`);
      const backendIp = (JSON.parse(backend.stdout) as { ips: { address: string }[] }).ips[0]?.address.split('/')[0] as string;
      const server = spawn('ip', ['netns', 'exec', backend.ns, process.execPath, BACKEND, 'one', '8080', '5353', '3600000'], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(server);
      await new Promise<void>((resolve, reject) => {
        server.stdout?.once('data', () => resolve());
        server.once('exit', () => reject(new Error('the backend exited')));
      });
      let vipIp: string | undefined;
      for (let i = 0; i < 300 && vipIp === undefined; i++) {
        const view = JSON.parse((await api(cluster, clientAgent, 'GET', '/v1/vips?counters=0')).body) as {
          vips: { name?: string; address: string; backends: unknown[] }[];
          rules: { converged: boolean } | null;
        };
        const one = view.vips.find((v) => v.name === 'one.bench' && v.address.includes('.') && v.backends.length === 1);
        if (one !== undefined && view.rules?.converged === true) vipIp = one.address;
        else await new Promise((r) => setTimeout(r, 200));
      }
      if (vipIp === undefined) throw new Error('the VIP /one:80 was not programmed on the client agent within 60 s');
      await load(client.ns, backendIp, 8080, 2000);
      await load(client.ns, vipIp, 80, 2000);
      const direct: number[] = [];
      const viaVip: number[] = [];
      const latency: Record<'direct' | 'vip', number[]> = { direct: [], vip: [] };
      let errors = 0;
      for (let r = 0; r < rounds; r++) {
        for (const mode of ['direct', 'vip'] as const) {
          const res = mode === 'direct' ? await load(client.ns, backendIp, 8080, seconds * 1000) : await load(client.ns, vipIp, 80, seconds * 1000);
          (mode === 'direct' ? direct : viaVip).push(res.completed / seconds);
          latency[mode].push(res.p99Ms);
          errors += res.errors;
          log(`round ${r + 1} ${mode}: ${Math.round(res.completed / seconds)} connections/s, p50 ${round(res.p50Ms)} ms, p99 ${round(res.p99Ms)} ms, ${res.errors} errors`);
        }
      }
      server.kill('SIGKILL');

      // Propagation: a permanent backend makes /prop:80 exist (its address allocated once), then
      // backends come and go through the tasks API of agent after agent.
      const subnetOf = (agent: string): string => (cluster.leaseOf(agent)?.networks['dcos']?.mesos ?? '9.0.0.0/25').split('/')[0] as string;
      const fakeIp = (agent: string, k: number): string => {
        const parts = subnetOf(agent).split('.').map(Number);
        return `${parts[0]}.${parts[1]}.${parts[2]}.${(parts[3] as number) + 100 + (k % 20)}`;
      };
      const arrivals = new Map(names.map((n) => [n, [] as { atMs: number; data: string }[]]));
      const unwatch = names.map((n) => watchTasks(cluster, n, arrivals.get(n) as { atMs: number; data: string }[]));
      /** When `n`'s store first held (added) or no longer held (removed) the backend's address, after `sinceMs`. */
      const arrival = (n: string, ip: string, change: 'added' | 'removed', sinceMs: number): number | undefined =>
        arrivals.get(n)?.find((e) => e.atMs >= sinceMs && e.data.includes(`"${ip}"`) === (change === 'added'))?.atMs;
      const split: { storeMs: number; rulesAfterMs: number }[] = [];
      /** From each agent's own records: the news built into its desired VIPs, and its apply after that. */
      const own: { wantedMs: number; applyMs: number }[] = [];
      // The daemons' CPU (whole process trees, masters included): an idle window first, so
      // that what the changes cost can be told from what a quiet cluster spends anyway.
      const pids = [...cluster.nodes.values()].map((n) => n.child?.pid);
      const idleCpuMsPerSec = await idleCpuRate(pids, IDLE_WINDOW_MS);
      const allocStart = Date.now();
      await api(cluster, clientAgent, 'PUT', `/v1/tasks/bench/anchor?ip=${fakeIp(clientAgent, 0)}&vip=${encodeURIComponent('/prop:80')}`);
      /** Per agent of the last call: when its desired VIPs changed (ms after the call). */
      let wanted: number[] = [];
      const seenEverywhere = async (backend: string, change: 'added' | 'removed', sinceMs: number): Promise<number[] | undefined> => {
        const deadline = Date.now() + 30_000;
        const at = new Map<string, number>();
        const want = new Map<string, number>();
        while (Date.now() < deadline && at.size < names.length) {
          // The times are the agents' own records, so how often this asks changes no figure,
          // only the load it adds to the daemons it measures: it asked every 100 ms, 160
          // requests a second into 16 busy daemons during every change.
          await new Promise((r) => setTimeout(r, POLL_MS));
          await Promise.all(
            names
              .filter((n) => !at.has(n))
              .map(async (n) => {
                const view = JSON.parse((await api(cluster, n, 'GET', `/v1/vips?counters=0&changes=1&since=${sinceMs}`)).body) as { rules: { changes?: Change[] } | null };
                const hit = (view.rules?.changes ?? []).find((c) => c.backend === backend && c.change === change && c.atMs >= sinceMs);
                if (hit !== undefined) {
                  at.set(n, hit.atMs - sinceMs);
                  want.set(n, hit.wantedAtMs - sinceMs);
                }
              }),
          );
        }
        // In the order of `names`, so that a figure can be matched with the same agent's store.
        wanted = names.map((n) => want.get(n) ?? Number.NaN);
        return at.size === names.length ? names.map((n) => at.get(n) as number) : undefined;
      };
      const first = await seenEverywhere(`${fakeIp(clientAgent, 0)}:80`, 'added', allocStart);
      const allocationMs = first === undefined ? Number.NaN : Math.max(...first);
      log(`the first backend of /prop:80 (address allocated by the masters) reached all ${names.length} agents' rules after ${Math.round(allocationMs)} ms`);
      const samples: { change: 'added' | 'removed'; allMs: number }[] = [];
      let timeouts = 0;
      const trialsStartMs = Date.now();
      const trialsStartCpuMs = treeCpuMs(pids);
      for (let k = 0; k < trials; k++) {
        const agent = names[1 + (k % (names.length - 1))] as string;
        const ip = fakeIp(agent, k + 1);
        for (const change of ['added', 'removed'] as const) {
          const t0 = Date.now();
          const path = `/v1/tasks/bench/t${k}${change === 'added' ? `?ip=${ip}&vip=${encodeURIComponent('/prop:80')}` : ''}`;
          const res = await api(cluster, agent, change === 'added' ? 'PUT' : 'DELETE', path);
          if (res.status !== 200) throw new Error(`${path} on ${agent}: ${res.status} ${res.body}`);
          const per = await seenEverywhere(`${ip}:80`, change, t0);
          if (per === undefined) {
            timeouts++;
            log(`trial ${k} ${change}: not every agent took it within 30 s`);
            continue;
          }
          samples.push({ change, allMs: Math.max(...per) });
          if (wanted.every((x) => Number.isFinite(x))) own.push({ wantedMs: Math.max(...wanted), applyMs: Math.max(...per.map((ms, i) => ms - (wanted[i] as number))) });
          // Where the time went: the slowest store arrival, and the slowest rules-after-arrival.
          const stores = names.map((n) => (arrival(n, ip, change, t0) ?? Number.NaN) - t0);
          if (stores.every((x) => Number.isFinite(x))) split.push({ storeMs: Math.max(...stores), rulesAfterMs: Math.max(...per.map((ms, i) => ms - (stores[i] as number))) });
          log(`trial ${k}: backend ${ip} ${change} through ${agent}'s API: in every agent's rules after ${Math.round(Math.max(...per))} ms (first agent ${Math.round(Math.min(...per))} ms)`);
        }
      }

      const trialsCpuMs = treeCpuMs(pids) - trialsStartCpuMs;
      const trialsWallMs = Date.now() - trialsStartMs;
      const changes = 2 * trials;
      const perChangeCpuMs = (trialsCpuMs - (idleCpuMsPerSec * trialsWallMs) / 1000) / changes;
      for (const u of unwatch) u();
      const wantedSplit = summarize(own.map((x) => x.wantedMs));
      const applySplit = summarize(own.map((x) => x.applyMs));
      const storeSplit = summarize(split.map((x) => x.storeMs));
      const rulesSplit = summarize(split.map((x) => x.rulesAfterMs));
      // What the agents' VIP syncers did over the run (a failed update costs a retry and a whole replace).
      const syncStats = { fullApplies: 0, incrementalApplies: 0, applyFailures: 0, drift: 0 };
      for (const n of names) {
        const view = JSON.parse((await api(cluster, n, 'GET', '/v1/vips?counters=0')).body) as { rules: { stats: typeof syncStats } | null };
        for (const k of Object.keys(syncStats) as (keyof typeof syncStats)[]) syncStats[k] += view.rules?.stats[k] ?? 0;
      }
      const slowest = [...samples].sort((a, b) => b.allMs - a.allMs).slice(0, 3);
      const d = summarize(direct);
      const v = summarize(viaVip);
      const ratio = v.p50 / d.p50;
      const all = summarize(samples.map((s) => s.allMs));
      const rows: Record<string, Cell>[] = [
        {
          part: 'throughput',
          path: `direct to the backend (${backendAgent})`,
          'conn/s p50': round(d.p50),
          'p99 latency ms (worst round)': round(Math.max(...latency.direct)),
          'change -> all agents p50 ms': null,
          'p99 ms': null,
          samples: rounds,
        },
        {
          part: 'throughput',
          path: 'through the named VIP',
          'conn/s p50': round(v.p50),
          'p99 latency ms (worst round)': round(Math.max(...latency.vip)),
          'change -> all agents p50 ms': null,
          'p99 ms': null,
          samples: rounds,
        },
        ...(['added', 'removed'] as const).map((change) => {
          const s = summarize(samples.filter((x) => x.change === change).map((x) => x.allMs));
          return {
            part: 'propagation',
            path: `backend ${change} (tasks API)`,
            'conn/s p50': null,
            'p99 latency ms (worst round)': null,
            'change -> all agents p50 ms': round(s.p50),
            'p99 ms': round(s.p99),
            samples: s.n,
          };
        }),
      ];
      const targets: TargetCheck[] = [
        { name: 'connections/s through a VIP vs directly to the backend (median of rounds)', target: '>= 0.8x', measured: `${round(ratio)}x`, met: ratio >= 0.8 },
        {
          name: `a backend change in all ${names.length} agents' rules, p99 over ${samples.length} changes`,
          target: '< 1 s',
          measured: `${round(all.p99)} ms${timeouts > 0 ? ` (${timeouts} timed out)` : ''}`,
          met: all.p99 < 1000 && timeouts === 0,
        },
      ];
      return {
        parameters: { agents, masters: 3, rounds, secondsPerRound: seconds, concurrency: 16, trials, pollMs: POLL_MS, idleWindowMs: IDLE_WINDOW_MS },
        rows,
        targets,
        notes: [
          `throughput: connection errors over all rounds: ${errors}; the client, the backend and 19 daemons share the 2 cores, so the figures are what this machine gives, the ratio is the VIP's cost`,
          `propagation, where the time goes, from the agents' own records (${own.length} changes): the news built into the slowest agent's desired VIPs p50 ${round(wantedSplit.p50)} ms, p99 ${round(wantedSplit.p99)} ms after the API call; each agent's apply after its own news (worst agent per change) p50 ${round(applySplit.p50)} ms, p99 ${round(applySplit.p99)} ms`,
          `propagation, the same seen from outside (${split.length} changes): the row reaching the slowest agent's store p50 ${round(storeSplit.p50)} ms, p99 ${round(storeSplit.p99)} ms (each agent's store watched over its API, timed when this process read the event: an upper bound, this process being busy with 16 streams and polls); on each agent, its rules after its own store's arrival (the worst agent per change) p50 ${round(rulesSplit.p50)} ms, p99 ${round(rulesSplit.p99)} ms`,
          `propagation: the agents' VIP syncers over the run: ${syncStats.incrementalApplies} updates, ${syncStats.fullApplies} whole replaces, ${syncStats.applyFailures} failed applies, ${syncStats.drift} drift repairs; slowest changes ${slowest.map((x) => `${round(x.allMs)} ms (${x.change})`).join(', ')}`,
          `propagation, the CPU the daemons spent (${pids.length} process trees, from /proc): ${round(idleCpuMsPerSec)} ms per second in a quiet ${round(IDLE_WINDOW_MS / 1000)} s window; over the ${changes} changes ${round(trialsCpuMs / 1000)} s in ${round(trialsWallMs / 1000)} s, so about ${round(perChangeCpuMs)} ms per change above idle, summed over the daemons (this process's polls of every agent included): on 2 cores, work that alone keeps the slowest agent about ${round(perChangeCpuMs / 2)} ms behind the first`,
          `propagation: the first backend of a new named VIP (address allocated by the masters' Raft log, then published) reached every agent's rules after ${round(allocationMs)} ms`,
          "propagation path: tasks API -> the agent writes its signed tasks row -> gossip delta to every node -> each agent rebuilds its VIPs and applies one nft transaction touching that VIP only; times are each agent's own record of its apply (wall clock, one machine)",
          `cluster formation (3 masters + ${agents} agents, spawn -> every agent routes to every other): ${round(formationMs / 1000)} s; DNS name of the VIP: one.bench.l4lb.${ZONE}`,
        ],
      };
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await stopForProfiles(cluster);
      await cluster.destroy();
    }
  },
};

export default bench;
