/**
 * Names (issue 20), two parts.
 *
 * Serving: lashup's DNS server (the daemon's DnsServer and TaskCatalog, in a process of its own)
 * and dnsmasq serving the same 10,000 containerip names from a hosts file, on 127.0.0.1,
 * measured with dnsperf in the same run, rounds interleaved: at saturation (dnsperf's default
 * of 100 queries outstanding, for queries/s) and at a fixed 5,000 queries/s (for the latency
 * a client sees under a heavy but not saturating load), each server warmed by one unmeasured pass
 * through the names. Latencies are dnsperf's own per-query figures (`-v`), so p50/p99 come from
 * every query, not from averages.
 *
 * Propagation: 3 masters and 16 agents as real daemons in namespaces (this benchmark creates and
 * removes them); trial after trial a container is attached through CNI with a task name on one
 * agent, and a probe in a container on another agent asks every agent's DNS server (on its
 * bridge gateway, across the overlay) every 10 ms until each answers; the figure is the time
 * from the CNI ADD returning until the last agent answers.
 *
 * Needs root, dnsperf and dnsmasq (Debian packages dnsperf, dnsmasq-base).
 */
import '../src/polyfills.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as packet from 'dns-packet';
import { CNI_PLUGIN_DIR, NetnsCluster } from '../src/demo/index.js';
import { benchRecords } from './lib/dns-records.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const now = (): number => performance.timeOrigin + performance.now();
const RECORDS = 10_000;
const FIXED_QPS = 5000;
const DNSPERF = '/usr/bin/dnsperf';
const DNSMASQ = '/usr/sbin/dnsmasq';

interface PerfRun {
  qps: number;
  sent: number;
  lost: number;
  latenciesMs: number[];
}

/**
 * One dnsperf run against 127.0.0.1:port; per-query latencies from its verbose lines. Its
 * output goes to a file and is read afterwards: parsing hundreds of thousands of lines while it
 * ran took CPU from the server under test (the 2 cores are shared).
 */
async function dnsperf(port: number, queryFile: string, seconds: number, maxQps?: number, passes?: number): Promise<PerfRun> {
  const args = [
    '-s',
    '127.0.0.1',
    '-p',
    String(port),
    '-d',
    queryFile,
    '-l',
    String(seconds),
    ...(passes === undefined ? ['-v'] : ['-n', String(passes)]),
    ...(maxQps === undefined ? [] : ['-Q', String(maxQps)]),
  ];
  const outFile = `${queryFile}.out`;
  const out = openSync(outFile, 'w');
  const child = spawn(DNSPERF, args, { stdio: ['ignore', out, 'ignore'] });
  closeSync(out);
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.once('error', reject);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  const run: PerfRun = { qps: 0, sent: 0, lost: 0, latenciesMs: [] };
  for (const text of readFileSync(outFile, 'utf8').split('\n')) {
    if (text.startsWith('> ')) {
      const latency = Number(text.slice(text.lastIndexOf(' ') + 1));
      if (Number.isFinite(latency)) run.latenciesMs.push(latency * 1000);
      continue;
    }
    const qps = /Queries per second:\s+([\d.]+)/.exec(text);
    if (qps !== null) run.qps = Number(qps[1]);
    const sent = /Queries sent:\s+(\d+)/.exec(text);
    if (sent !== null) run.sent = Number(sent[1]);
    const lost = /Queries lost:\s+(\d+)/.exec(text);
    if (lost !== null) run.lost = Number(lost[1]);
  }
  rmSync(outFile, { force: true });
  if (code !== 0 || run.sent === 0) throw new Error(`dnsperf exited ${code} after ${run.sent} queries`);
  return run;
}

/** A free UDP port on 127.0.0.1 (bound and released; the server binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:port answers `name` with an address (bounded: 10 s). */
async function answers(port: number, name: string): Promise<void> {
  const socket = createSocket('udp4');
  try {
    for (let i = 0; i < 100; i++) {
      const got = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 100);
        socket.once('message', (msg) => {
          clearTimeout(timer);
          resolve((packet.decode(msg).answers ?? []).length > 0);
        });
        socket.send(packet.encode({ id: i, type: 'query', questions: [{ name, type: 'A' }] }), port, '127.0.0.1');
      });
      if (got) return;
    }
    throw new Error(`127.0.0.1:${port} did not answer ${name} within 10 s`);
  } finally {
    socket.close();
  }
}

interface Server {
  port: number;
  child: ChildProcess;
}

async function startLashup(): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', join(here, '..', 'src', 'polyfills.js'), join(here, 'lib', 'dns-server-worker.js'), String(RECORDS), String(port)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { port, child };
}

async function startDnsmasq(hostsFile: string): Promise<Server> {
  const port = await freePort();
  // No logging, no upstreams, no /etc/hosts: the hosts file alone, with lashup's TTL.
  const child = spawn(
    DNSMASQ,
    ['--no-daemon', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, '--local-ttl=5', '--user=root', '--pid-file='],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  return { port, child };
}

async function stop(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

interface ServingFigures {
  server: string;
  mode: string;
  qps: number[];
  lost: number;
  sent: number;
  latenciesMs: number[];
}

async function serving(rounds: number, seconds: number, log: (m: string) => void): Promise<ServingFigures[]> {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-bench-dns-'));
  try {
    const records = benchRecords(RECORDS);
    const queryFile = join(dir, 'queries.txt');
    const hostsFile = join(dir, 'hosts');
    writeFileSync(queryFile, records.map((r) => `${r.name} A\n`).join(''));
    writeFileSync(hostsFile, records.map((r) => `${r.ip} ${r.name}\n`).join(''), { mode: 0o644 });
    const figures = new Map<string, ServingFigures>();
    const add = (server: string, mode: string, run: PerfRun): void => {
      const key = `${server}/${mode}`;
      const f = figures.get(key) ?? { server, mode, qps: [], lost: 0, sent: 0, latenciesMs: [] };
      f.qps.push(run.qps);
      f.lost += run.lost;
      f.sent += run.sent;
      for (const l of run.latenciesMs) f.latenciesMs.push(l);
      figures.set(key, f);
    };
    for (let round = 1; round <= rounds; round++) {
      for (const [name, start] of [
        ['lashup', () => startLashup()],
        ['dnsmasq', () => startDnsmasq(hostsFile)],
      ] as const) {
        const server = await start();
        try {
          await answers(server.port, records[0]?.name as string);
          // Warm-up, not measured: three passes through every name (a running daemon is warm: its
          // code compiled, its answers cached; dnsmasq gets the same passes).
          await dnsperf(server.port, queryFile, seconds, undefined, 3);
          const saturated = await dnsperf(server.port, queryFile, seconds);
          add(name, 'saturation (100 outstanding)', saturated);
          const fixed = await dnsperf(server.port, queryFile, seconds, FIXED_QPS);
          add(name, `${FIXED_QPS} queries/s`, fixed);
          log(`round ${round} ${name}: ${Math.round(saturated.qps)} q/s at saturation (lost ${saturated.lost}), ${Math.round(fixed.qps)} q/s fixed (lost ${fixed.lost})`);
        } finally {
          await stop(server);
        }
      }
    }
    return [...figures.values()];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface PropagationTrial {
  /** CNI ADD returned -> the last agent's DNS server answers the name, ms. */
  allMs: number;
  /** Per agent: ADD returned -> that agent answers (negative: it answered before ADD returned). */
  perAgentMs: number[];
}

async function propagation(agents: number, trials: number, log: (m: string) => void): Promise<{ trials: PropagationTrial[]; timeouts: number; formationMs: number }> {
  const command = [process.execPath, '--import', join(here, '..', 'src', 'polyfills.js'), join(here, '..', 'src', 'cli', 'main.js')];
  const startedMs = now();
  const cluster = await NetnsCluster.create({ agents, command, prefix: 'lxb' });
  let poller: ChildProcess | undefined;
  try {
    if (!(await cluster.converge(300_000))) throw new Error(`${agents} agents did not converge within 300 s`);
    const formationMs = now() - startedMs;
    const names = cluster.agents.map((a) => a.name);
    const gateways = names.map((n) => cluster.leaseOf(n)?.networks['dcos']?.mesosGateway as string);
    const probe = await cluster.cni(names[0] as string, 'ADD', 'probe');
    if (probe.code !== 0) throw new Error(`the probe container could not be attached: ${probe.stdout} ${probe.stderr}`);
    poller = spawn('ip', ['netns', 'exec', probe.ns, process.execPath, join(here, 'lib', 'dns-poller.js'), ...gateways], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: { atMs: number; text: string }[] = [];
    const waiters: { match: (t: string) => boolean; resolve: (t: string) => void }[] = [];
    let buffer = '';
    poller.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const text of parts) {
        lines.push({ atMs: now(), text });
        for (const w of [...waiters])
          if (w.match(text)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(text);
          }
      }
    });
    const next = (match: (t: string) => boolean): Promise<string> =>
      new Promise((resolve) => {
        const seen = lines.find((l) => match(l.text));
        if (seen !== undefined) resolve(seen.text);
        else waiters.push({ match, resolve });
      });
    await next((t) => t === 'ready');
    const results: PropagationTrial[] = [];
    let timeouts = 0;
    for (let k = 0; k < trials; k++) {
      const agent = names[1 + (k % (names.length - 1))] as string;
      const name = `p${k}.bench.containerip.dcos.thisdcos.directory`;
      poller.stdin?.write(`watch ${name}\n`);
      const add = await cluster.cni(agent, 'ADD', `named${k}`, 'dcos', `IgnoreUnknown=1;LASHUP_TASK=p${k};LASHUP_FRAMEWORK=bench`);
      const addedMs = now();
      if (add.code !== 0) throw new Error(`trial ${k}: ADD on ${agent} failed: ${add.stdout} ${add.stderr}`);
      const end = await next((t) => t === `done ${name}` || t.startsWith(`timeout ${name} `));
      if (end.startsWith('timeout')) {
        timeouts++;
        log(`trial ${k}: not every agent answered within 15 s: ${end}`);
        continue;
      }
      const seen = lines.filter((l) => l.text.startsWith(`seen ${name} `)).map((l) => Number(l.text.split(' ')[3]));
      const perAgentMs = seen.map((s) => s - addedMs);
      const allMs = Math.max(...perAgentMs);
      results.push({ allMs, perAgentMs });
      log(`trial ${k}: task on ${agent} answered by all ${gateways.length} agents ${Math.round(allMs)} ms after its CNI ADD returned`);
    }
    return { trials: results, timeouts, formationMs };
  } finally {
    poller?.stdin?.end();
    poller?.kill('SIGKILL');
    await cluster.destroy();
  }
}

const bench: Benchmark = {
  name: 'dns',
  description: `lashup's DNS server vs dnsmasq on ${RECORDS.toLocaleString('en')} containerip names (dnsperf, same run, interleaved rounds); a task's name reaching every agent's DNS server (real daemons in network namespaces)`,
  async run({ quick, sizes, log }): Promise<BenchResult> {
    const missing = [DNSPERF, DNSMASQ, `${CNI_PLUGIN_DIR}/bridge`].filter((p) => !existsSync(p));
    if (missing.length > 0) throw new Error(`the dns benchmark needs ${missing.join(', ')} (Debian packages dnsperf, dnsmasq-base, containernetworking-plugins)`);
    if (process.getuid?.() !== 0) throw new Error('the dns benchmark needs root (network namespaces)');
    const rounds = quick ? 1 : 3;
    const seconds = quick ? 3 : 10;
    const agents = sizes?.[0] ?? (quick ? 4 : 16);
    const trials = quick ? 5 : 30;

    const served = await serving(rounds, seconds, log);
    const rows: Record<string, Cell>[] = served.map((f) => {
      const l = summarize(f.latenciesMs);
      return {
        part: 'serving',
        server: f.server,
        load: f.mode,
        'q/s p50': round(summarize(f.qps).p50),
        'latency p50 ms': round(l.p50),
        'latency p99 ms': round(l.p99),
        lost: f.lost,
        sent: f.sent,
      };
    });
    const of = (server: string, mode: string): ServingFigures | undefined => served.find((f) => f.server === server && f.mode.startsWith(mode));
    const lashupSat = of('lashup', 'saturation');
    const dnsmasqSat = of('dnsmasq', 'saturation');
    const lashupFixed = of('lashup', String(FIXED_QPS));
    const ratio = summarize(lashupSat?.qps ?? []).p50 / summarize(dnsmasqSat?.qps ?? []).p50;
    const p99Fixed = summarize(lashupFixed?.latenciesMs ?? []).p99;
    const p99Sat = summarize(lashupSat?.latenciesMs ?? []).p99;
    const lost = (lashupSat?.lost ?? 0) + (lashupFixed?.lost ?? 0);

    log(`propagation: 3 masters + ${agents} agents, ${trials} trials`);
    const prop = await propagation(agents, trials, log);
    const all = summarize(prop.trials.map((t) => t.allMs));
    const each = summarize(prop.trials.flatMap((t) => t.perAgentMs));
    rows.push({
      part: 'propagation',
      server: `lashup, ${agents} agents`,
      load: 'ADD -> every agent answers',
      'q/s p50': null,
      'latency p50 ms': round(all.p50),
      'latency p99 ms': round(all.p99),
      lost: prop.timeouts,
      sent: trials,
    });

    const targets: TargetCheck[] = [
      { name: "lashup's answered queries/s vs dnsmasq's, at saturation (median of rounds)", target: '>= 0.5x', measured: `${round(ratio)}x`, met: ratio >= 0.5 },
      { name: `lashup's p99 latency at ${FIXED_QPS} queries/s`, target: '< 5 ms', measured: `${round(p99Fixed)} ms`, met: p99Fixed < 5 },
      { name: "lashup's p99 latency at saturation (100 queries outstanding, so queueing included)", target: '< 5 ms', measured: `${round(p99Sat)} ms`, met: p99Sat < 5 },
      { name: 'queries lost by lashup (both loads, all rounds)', target: '0', measured: String(lost), met: lost === 0 },
      {
        name: `a task started on one agent resolvable on all ${agents} agents, p99 over ${prop.trials.length} trials`,
        target: '< 1 s',
        measured: `${round(all.p99)} ms${prop.timeouts > 0 ? ` (${prop.timeouts} trials timed out)` : ''}`,
        met: all.p99 < 1000 && prop.timeouts === 0,
      },
    ];
    return {
      parameters: { records: RECORDS, rounds, secondsPerRun: seconds, fixedQps: FIXED_QPS, dnsperfOutstanding: 100, agents, masters: 3, trials, pollMs: 10 },
      rows,
      targets,
      notes: [
        'serving: one lashup process (DnsServer + TaskCatalog, as the daemon runs them) and dnsmasq (hosts file, no logging), one at a time on 127.0.0.1; dnsperf shares the 2 cores with the server under test',
        `propagation: per-agent figures (ADD returned -> that agent answers) p50 ${round(each.p50)} ms, p99 ${round(each.p99)} ms; negative values are the publishing agent answering before ADD returned`,
        `propagation: cluster formation (3 masters + ${agents} agents, spawn -> every agent routes to every other) took ${round(prop.formationMs / 1000)} s`,
        'propagation path: CNI ADD -> the agent records the named attachment and writes its signed tasks row -> gossip delta (kv) to every node -> each node rebuilds its catalog; the probe polls every 10 ms, so figures carry up to 10 ms of polling granularity',
      ],
    };
  },
};

export default bench;
