/**
 * Live clusters on 127.0.0.1: N = 10, 60 and 200 lashup nodes in worker processes, SWIM over
 * encrypted UDP, the store over libp2p gossipsub on each node's bounded peer set, default (LAN)
 * timeouts.
 *
 * Layout: three seeds (n0-n2, which every node joins through, each alone as the masters of a
 * real cluster are) and three "victims" (killed with SIGKILL one at a time) in single-node
 * processes; the other N - 6 nodes spread over up to 8 processes (several nodes per process,
 * each node with its own sockets, libp2p node and data directory). Every node writes its own
 * `formation/<name>` key at start.
 *
 * Measured:
 * - formation: from spawning the processes until every node sees N alive and holds all N
 *   formation keys;
 * - connections per node: libp2p connections of every node, sampled after formation, during
 *   idle and after the updates (max and mean);
 * - update to all: 100 updates, each at a random node; from the writer applying it to the last
 *   node applying it (p50, p99, max), timestamps absolute across processes;
 * - SIGKILL to failed at all: from the kill to the last surviving node declaring the victim
 *   failed (3 kills: the p99 is the worst of them);
 * - false failures: any live node declared failed, over the whole run from the first process's
 *   start (and how many of them before the formation was done);
 * - idle: CPU (user + system) of all workers over IDLE_WINDOW_MS with nothing happening, per node, as a
 *   percentage of one core; bytes per second per node on the loopback interface (everything:
 *   SWIM, libp2p, TCP headers); resident memory of a one-node process;
 * - signed rows (issue 17): the CPU an agent's signed overlay entry costs per update, on the
 *   daemon's code in this process before the workers start (lib/row-cost.ts): signing at the
 *   writer, the admission check at each replica against the same join without it, and the sum
 *   over the cluster (one signature, N - 1 checks).
 */
import '../src/polyfills.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../src/daemon/index.js';
import { generateClusterKey } from '../src/net/index.js';
import { WorkerHandle, type WorkerEvent } from './lib/cluster-parent.js';
import { measureRowCost } from './lib/row-cost.js';
import { quantile, round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function loopbackTxBytes(): number {
  const line = readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .find((l) => l.trim().startsWith('lo:'));
  const fields = (line ?? '').split(':')[1]?.trim().split(/\s+/) ?? [];
  return Number(fields[8] ?? 0);
}

/**
 * The idle window. A minute, not 10 s: a node's periodic work comes every 30 s (membership
 * push-pull, anti-entropy) and every 300-450 s (a peer rotation), and one process's idle CPU moves
 * by 2-3x from one 10 s window to the next (collections, those rounds). Ten one-node processes
 * watched for 5 minutes after formation (2026-12-05): 5.3 ms/s each in the 10 s window where
 * this benchmark used to measure, 6-14 ms/s (mean ~9) in the windows after it.
 */
const IDLE_WINDOW_MS = 60_000;

interface RunResult {
  updateMs: number[];
  updatesLost: number;
  /** CPU per update summed over every process, above the idle rate, in ms. */
  updateCpuMs: number;
  killToFailedMs: number[];
  /** Live nodes declared failed, over the whole run (formation included). */
  falseFailures: number;
  /** Of them, those until the formation was done. */
  falseFailuresInFormation: number;
  idleCpuPercentPerNode: number;
  idleBytesPerNodeSec: number;
  rssMiBPerNode: number;
  singleNodeRssMiB: number;
  formationMs: number;
  connectionsMax: number;
  connectionsMean: number;
}

interface NodeStats {
  name: string;
  live: number;
  formationKeys: number;
  connections: number;
}

/** A node's keep counters, from its libp2p stats (the debug output). */
function keepStats(libp2p: unknown): Record<string, unknown> {
  const l = (libp2p ?? {}) as Record<string, unknown>;
  return { asked: l['keepsAsked'], failed: l['keepsFailed'], slow: l['keepsSlow'], out: l['keepsOut'], in: l['keepsIn'] };
}

const nodeStats = (events: WorkerEvent[]): NodeStats[] => events.flatMap((e) => e.nodes as NodeStats[]);
/** Debug: a dotted stats path ('libp2p.dials') summed over nodes (0 where a node lacks it). */
const sumStat = (nodes: readonly unknown[], path: string): number =>
  nodes.reduce<number>((total, n) => {
    const v = path.split('.').reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), n);
    return total + (typeof v === 'number' ? v : 0);
  }, 0);

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function stats(workers: WorkerHandle[]): Promise<WorkerEvent[]> {
  return Promise.all(workers.map((w) => w.stats()));
}

async function run(nodes: number, log: (m: string) => void): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-bench-cluster-'));
  const key = generateClusterKey();
  // The worker as bundled with the daemon (tools/bundle.mjs): its memory and start-up are the
  // shipped code's. It imports the polyfills first itself.
  const script = join(here, '..', 'bundle', 'bench-cluster-worker.js');
  // The one-node processes (seeds, victims) run with Node's flags and environment (DAEMON_ENV) as
  // the packaged daemon does; the processes that host many nodes take Node's defaults (a 4 MiB
  // young generation is sized for one node, not for 7-25 in one heap). LASHUP_BENCH_WORKER_FLAGS="..." replaces the flags
  // of every process (a developer's tool for trying V8 settings; off in normal runs).
  const flagsOverride = process.env['LASHUP_BENCH_WORKER_FLAGS']?.split(' ').filter((f) => f !== '');
  const flagsOf = (oneNode: boolean): string[] => flagsOverride ?? (oneNode ? [...DAEMON_NODE_FLAGS] : []);
  const victims = 3;
  // The seeds everyone joins through (n0-n2) run alone, as the masters of a real cluster do.
  const seedCount = 3;
  const rest = nodes - victims - seedCount;
  const processes = Math.min(8, rest);
  const workers: WorkerHandle[] = [];
  const placement = new Map<WorkerHandle, string[]>();
  const all: WorkerHandle[] = [];
  try {
    const started = Date.now();
    // LASHUP_BENCH_PROFILE=DIR: one process writes a CPU profile there when the formation is
    // done (a developer's tool; off in normal runs): the second seed's (n1), or with
    // LASHUP_BENCH_PROFILE_PROCESS=I the I-th (0 to 7 run most nodes, then the seeds, then the
    // victims).
    // LASHUP_BENCH_PROFILE_PHASE=idle or =updates profiles that process over the idle window or
    // the updates instead, and the run goes on.
    const profileDir = process.env['LASHUP_BENCH_PROFILE'];
    const profilePhase = process.env['LASHUP_BENCH_PROFILE_PHASE'] ?? 'formation';
    const profiledIndex = Number(process.env['LASHUP_BENCH_PROFILE_PROCESS'] ?? processes + 1);
    for (let p = 0; p < processes + seedCount + victims; p++) {
      const profiled = profileDir !== undefined && profilePhase === 'formation' && p === profiledIndex;
      const execArgv = flagsOf(p >= processes);
      const w = WorkerHandle.spawn(script, profiled ? [...execArgv, '--cpu-prof', `--cpu-prof-dir=${profileDir}`] : execArgv, undefined, p >= processes ? DAEMON_ENV : {});
      all.push(w);
      placement.set(w, []);
    }
    // False failures: every failed event about a node that was not killed, from the start (a node
    // declared failed in the formation's overload healed unseen before: one 60-node formation
    // took 71.7 s that way).
    const killed = new Set<string>();
    let falseFailures = 0;
    /** Debug: member -> [first failed event's time since start, observers]. */
    const falselyFailed = new Map<string, [number, number]>();
    /**
     * Debug: for each suspected member, from the start in ms, its first suspicion anywhere, its
     * first failed event and who declared it, its first alive event after that (a refutation
     * seen), how many observers suspected it and how many saw the refutation before the first
     * failed event: whether a false failure is a refutation that arrived late or never.
     */
    const debugSuspicions = process.env['LASHUP_BENCH_DEBUG'] === '1';
    const suspectTimes = new Map<string, { suspectAt: number; failedAt?: number; failedBy?: string; aliveAt?: number; suspecters: Set<string>; aliveBeforeFailed: number }>();
    for (const w of all) {
      w.onEvent((e) => {
        if (debugSuspicions && e.evt === 'member') {
          const at = Date.now() - started;
          const m = e.member as string;
          let st = suspectTimes.get(m);
          if (e.type === 'suspect') {
            if (st === undefined) {
              st = { suspectAt: at, suspecters: new Set(), aliveBeforeFailed: 0 };
              suspectTimes.set(m, st);
            }
            st.suspecters.add(e.node as string);
          } else if (e.type === 'alive' && st !== undefined) {
            st.aliveAt ??= at;
            if (st.failedAt === undefined) st.aliveBeforeFailed++;
          } else if (e.type === 'failed' && st !== undefined && st.failedAt === undefined) {
            st.failedAt = at;
            st.failedBy = e.node as string;
          }
        }
        if (e.evt !== 'member' || e.type !== 'failed' || killed.has(e.member as string)) return;
        falseFailures++;
        const seen = falselyFailed.get(e.member as string);
        if (seen === undefined) falselyFailed.set(e.member as string, [Date.now() - started, 1]);
        else seen[1]++;
      });
    }
    const main = all.slice(0, processes);
    const seedWorkers = all.slice(processes, processes + seedCount);
    const first = seedWorkers[0] as WorkerHandle;
    const victimWorkers = all.slice(processes + seedCount);
    for (let i = 0; i < rest; i++) (placement.get(main[i % processes] as WorkerHandle) as string[]).push(`n${i + seedCount}`);
    seedWorkers.forEach((w, i) => {
      (placement.get(w) as string[]).push(`n${i}`);
    });
    victimWorkers.forEach((w, i) => {
      (placement.get(w) as string[]).push(`v${i}`);
    });
    const spec = (name: string, seeds: string[]) => ({ name, dataDir: join(dir, name), seeds, clusterKey: key, label: 'bench', packetTransport: 'udp', formationKey: true });
    // The seeds first, so everyone else has addresses to join (the first seed alone; the other
    // two join it).
    first.send({ cmd: 'start', nodes: [spec('n0', [])] });
    const addressOf = async (w: WorkerHandle): Promise<string> => {
      const up = await w.waitFor((e) => e.evt === 'started', 30_000);
      const m = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec((up.nodes as { libp2p: string }[])[0]?.libp2p ?? '') as RegExpExecArray;
      return `${m[1]}:${m[2]}`;
    };
    const seed0 = await addressOf(first);
    seedWorkers.slice(1).forEach((w, i) => {
      w.send({ cmd: 'start', nodes: [spec(`n${i + 1}`, [seed0])] });
    });
    const seeds = [seed0, ...(await Promise.all(seedWorkers.slice(1).map(addressOf)))];
    for (const w of [...main, ...victimWorkers]) {
      const names = placement.get(w) as string[];
      if (names.length > 0) w.send({ cmd: 'start', nodes: names.map((n) => spec(n, seeds)) });
    }
    const startedCount = (w: WorkerHandle): number => w.events.filter((e) => e.evt === 'started').length;
    await until(() => all.every((w) => startedCount(w) >= 1), 60_000, 'workers started');
    if (all.some((w) => w.events.some((e) => e.evt === 'error'))) throw new Error(`a worker failed: ${JSON.stringify(all.flatMap((w) => w.events.filter((e) => e.evt === 'error')))}`);
    log(`nodes=${nodes}: every node started after ${Date.now() - started} ms`);
    workers.push(...all);
    const connections: number[] = [];
    const sample = (s: WorkerEvent[]): void => {
      for (const n of nodeStats(s)) connections.push(n.connections);
    };
    let formed = false;
    let last: NodeStats[] = [];
    let lastAnswered: WorkerEvent[] = [];
    const deadline = Date.now() + 300_000;
    let reportedAt = Date.now();
    // A worker hosting 25 nodes of a 200-node formation on two cores can leave a stats request
    // unanswered for over 10 s (its event loop busy with the formation); that is a slow
    // formation to measure, not a failed run: wait for it, count it, and go on.
    let lateStats = 0;
    while (!formed && Date.now() < deadline) {
      let answered: WorkerEvent[];
      try {
        answered = await stats(all);
      } catch (err) {
        lateStats++;
        log(`nodes=${nodes}: forming after ${Date.now() - started} ms: ${(err as Error).message}; waiting`);
        continue;
      }
      last = nodeStats(answered);
      lastAnswered = answered;
      formed = last.length === nodes && last.every((n) => n.live === nodes && n.formationKeys === nodes);
      if (!formed && Date.now() - reportedAt >= (process.env['LASHUP_BENCH_DEBUG'] === '1' ? 1000 : 5000)) {
        reportedAt = Date.now();
        const live = last.filter((n) => n.live === nodes).length;
        const keys = last.filter((n) => n.formationKeys === nodes).length;
        const minKeys = Math.min(...last.map((n) => n.formationKeys));
        const missing = new Map<string, number>();
        const names = last.map((n) => n.name);
        for (const n of last) {
          const have = new Set((n as NodeStats & { formationHave: string[] }).formationHave);
          for (const name of names) if (!have.has(name)) missing.set(name, (missing.get(name) ?? 0) + 1);
        }
        if (process.env['LASHUP_BENCH_DEBUG'] === '1') {
          // Keys nobody else holds yet: whom their writer's publishes went to, and whether those hold it.
          const byPeer = new Map(last.map((n) => [(n as NodeStats & { peerId: string }).peerId, n as NodeStats & { formationHave: string[] }]));
          for (const [name] of [...missing].filter(([, count]) => count >= nodes - 2).slice(0, 3)) {
            const writer = last.find((n) => n.name === name) as NodeStats & { publishes?: { atMs: number; to: string[] }[] };
            const publishes = (writer.publishes ?? []).map((p) => ({
              agoMs: Math.round(now() - p.atMs),
              to: p.to.map((id) => {
                const r = byPeer.get(id);
                return r === undefined ? id : `${r.name}${r.formationHave.includes(name) ? ' (holds it)' : ' (does not hold it)'}`;
              }),
            }));
            log(`unspread key of ${name}: its publishes ${JSON.stringify(publishes)}`);
          }
          // The node holding the fewest keys: its anti-entropy and peer counters.
          const laggard = last.reduce((a, b) => (b.formationKeys < a.formationKeys ? b : a)) as NodeStats & Record<string, unknown>;
          const l2p = (laggard['libp2p'] ?? {}) as Record<string, unknown>;
          log(
            `fewest keys: ${JSON.stringify({ name: laggard.name, live: laggard.live, keys: laggard.formationKeys, connections: laggard.connections, antiEntropy: laggard['antiEntropy'], peers: laggard['peers'], keeps: keepStats(laggard['libp2p']), gossip: { subscribers: laggard['subscribers'], streams: laggard['gossipStreams'], mesh: laggard['mesh'], published: l2p['published'], received: l2p['received'], outbox: l2p['outbox'], toNobody: l2p['publishedToNobody'] } })}`,
          );
        }
        const retrying = last.filter((n) => ((n as unknown as { joinAttempts: number }).joinAttempts ?? 0) > 1);
        log(
          `nodes=${nodes}: forming after ${Date.now() - started} ms: ${live} see all alive, ${keys} hold all keys (fewest ${minKeys}); missing keys ${JSON.stringify([...missing].slice(0, 6))}; ${retrying.length} retried joins, e.g. ${JSON.stringify(retrying.slice(0, 2).map((n) => (n as unknown as { joinError: string }).joinError))}`,
        );
      }
      if (!formed) await sleep(250);
    }
    if (!formed) {
      const lagging = last.filter((n) => n.live !== nodes || n.formationKeys !== nodes).slice(0, 5);
      throw new Error(`${nodes} nodes did not form within 300 s; e.g. ${JSON.stringify(lagging)}`);
    }
    const formationMs = Date.now() - started;
    const falseFailuresInFormation = falseFailures;
    if (process.env['LASHUP_BENCH_DEBUG'] === '1' && falselyFailed.size > 0) {
      const host = (name: string): number => all.findIndex((w) => (placement.get(w) ?? []).includes(name));
      log(`nodes=${nodes}: falsely failed in formation (member, first at ms, observers, process): ${JSON.stringify([...falselyFailed].map(([m, [at, n]]) => [m, at, n, host(m)]))}`);
      log(
        `nodes=${nodes}: falsely failed, suspicion timelines [member, first suspected at ms, observers suspecting, first failed at ms, first alive at ms, alive events before the first failed, first declared by, its process]: ${JSON.stringify(
          [...falselyFailed.keys()].map((m) => {
            const st = suspectTimes.get(m);
            return [m, st?.suspectAt, st?.suspecters.size, st?.failedAt, st?.aliveAt, st?.aliveBeforeFailed, st?.failedBy, host(st?.failedBy ?? '')];
          }),
        )}`,
      );
    }
    if (process.env['LASHUP_BENCH_DEBUG'] === '1') {
      // What the formation cost, summed over the nodes: dials and their failures, keeps, rounds.
      const paths = [
        'libp2p.dials',
        'libp2p.dialFailures',
        'libp2p.handshakeFailures',
        'libp2p.streamsOpened',
        'libp2p.keepsRefused',
        'libp2p.keepsAsked',
        'libp2p.keepsFailed',
        'libp2p.keepsSlow',
        'libp2p.idleClosed',
        'libp2p.gossipStreamsReopened',
        'libp2p.peerStoreShortcut.skipped',
        'libp2p.peerStoreShortcut.merged',
        'libp2p.connectionsOpened',
        'peers.chosen',
        'peers.lost',
        'antiEntropy.roundsStarted',
        'antiEntropy.roundsFailed',
        'antiEntropy.roundsFailedOpen',
        'antiEntropy.roundsFailedDeadline',
        'antiEntropy.roundsFailedClosed',
        'membership.suspicionsStarted',
        'membership.suspicionsRefused',
        'membership.refutations',
        'membership.directRefutations',
        'membership.lastChancePings',
        'membership.staleCorrections',
        'membership.probes',
        'membership.probesFailed',
        'membership.reliableProbes',
        'kv.localUpdates',
        'kv.remoteDeltasReceived',
        'kv.remoteDeltasRedundant',
        'antiEntropy.keysRepaired',
        'antiEntropy.retriesAfterFailure',
        'udp.packetsSent',
      ];
      // When each node's join was answered (it first heard of another member) and when it last
      // heard of a new member, from the start of the formation: late joins gate "all alive
      // everywhere".
      const joins = last.map((n) => (n as unknown as { joinTimes?: { upAtMs?: number; firstMemberAtMs?: number; lastMemberAtMs?: number } }).joinTimes).filter((t) => t !== undefined);
      const upMs = joins.map((t) => (t.upAtMs ?? Number.NaN) - started).filter((x) => Number.isFinite(x));
      const joinedMs = joins.map((t) => (t.firstMemberAtMs ?? Number.NaN) - started).filter((x) => Number.isFinite(x));
      const lastMemberMs = joins.map((t) => (t.lastMemberAtMs ?? Number.NaN) - started).filter((x) => Number.isFinite(x));
      const attempts = last.map((n) => (n as unknown as { joinAttempts?: number }).joinAttempts ?? 0);
      log(
        `nodes=${nodes}: nodes up (start returned) after p50 ${round(quantile(upMs, 0.5))} / p90 ${round(quantile(upMs, 0.9))} / max ${round(quantile(upMs, 1))} ms; joins answered after p50 ${round(quantile(joinedMs, 0.5))} / p90 ${round(quantile(joinedMs, 0.9))} / max ${round(quantile(joinedMs, 1))} ms; last new member heard p50 ${round(quantile(lastMemberMs, 0.5))} / max ${round(quantile(lastMemberMs, 1))} ms; join attempts max ${Math.max(...attempts)}, nodes with more than one ${attempts.filter((a) => a > 1).length}`,
      );
      const aeFailures = new Map<string, number>();
      for (const e of lastAnswered) for (const [reason, count] of Object.entries((e['aeFailures'] ?? {}) as Record<string, number>)) aeFailures.set(reason, (aeFailures.get(reason) ?? 0) + count);
      log(`nodes=${nodes}: failed anti-entropy rounds by reason: ${JSON.stringify([...aeFailures].sort((a, b) => b[1] - a[1]).slice(0, 8))}`);
      log(`nodes=${nodes}: formation totals: ${paths.map((p) => `${p}=${sumStat(last, p)}`).join(' ')}`);
    }
    const formedStats = await stats(all);
    if (process.env['LASHUP_BENCH_DEBUG'] === '1') {
      log(
        `nodes=${nodes}: event-loop delay by process until formed, p99 / max ms: ${formedStats.map((e, i) => `${(placement.get(all[i] as WorkerHandle) ?? []).length} nodes: ${String(e.loopDelayP99Ms)} / ${String(e.loopDelayMaxMs)}`).join('; ')}`,
      );
    }
    const formationCpuSec = formedStats.reduce((sum, e) => sum + ((e.cpuUserUs as number) + (e.cpuSystemUs as number)) / 1e6, 0);
    log(
      `nodes=${nodes}: formed (all alive, all formation keys) after ${formationMs} ms; the workers used ${round(formationCpuSec)} s of CPU until then (module loading included); stats requests answered late: ${lateStats}`,
    );
    if (profileDir !== undefined && profilePhase === 'formation') {
      const profiled = all[profiledIndex] as WorkerHandle;
      profiled.send({ cmd: 'stop' });
      await profiled.waitForExit(30_000);
      log(`profile of process ${profiledIndex} (${(placement.get(profiled) ?? []).join(', ')}) written to ${profileDir}`);
      throw new Error('profiling run: stopped after formation');
    }
    sample(await stats(all));
    // Settle: start-up garbage collected, meshes formed, first syncs done.
    await sleep(15_000);
    sample(await stats(all));

    // Idle.
    const before = await stats(all);
    const txBefore = loopbackTxBytes();
    const idleStart = now();
    const profileWindow = async (phase: string, run: () => Promise<void>): Promise<void> => {
      const profiled = profileDir !== undefined && profilePhase === phase ? all[profiledIndex] : undefined;
      profiled?.send({ cmd: 'profile-start' });
      await run();
      if (profiled === undefined || profileDir === undefined) return;
      const path = join(profileDir, `${phase}-${nodes}-process-${profiledIndex}.cpuprofile`);
      profiled.send({ cmd: 'profile-stop', path });
      await profiled.waitFor((e) => e.evt === 'profiled', 30_000);
      log(`${phase} profile of process ${profiledIndex} (${(placement.get(profiled) ?? []).join(', ')}) written to ${path}`);
    };
    let after: WorkerEvent[] = [];
    let idleSec = 0;
    await profileWindow('idle', async () => {
      await sleep(IDLE_WINDOW_MS);
      after = await stats(all);
      idleSec = (now() - idleStart) / 1000;
    });
    sample(after);
    const txAfter = loopbackTxBytes();
    let cpuUs = 0;
    after.forEach((e, i) => {
      const b = before[i] as WorkerEvent;
      cpuUs += (e.cpuUserUs as number) - (b.cpuUserUs as number) + (e.cpuSystemUs as number) - (b.cpuSystemUs as number);
    });
    const idleCpuPercentPerNode = (cpuUs / 1e6 / idleSec / nodes) * 100;
    // Per process, in every run: a multi-node process shares one runtime, so its per-node figure is
    // lower; the one-node processes' figure is a daemon's own.
    const perProcess = after.map((e, i) => {
      const b = before[i] as WorkerEvent;
      const userMs = ((e.cpuUserUs as number) - (b.cpuUserUs as number)) / 1000;
      const systemMs = ((e.cpuSystemUs as number) - (b.cpuSystemUs as number)) / 1000;
      const names = placement.get(all[i] as WorkerHandle) ?? [];
      return `${names.length === 1 ? names[0] : `${names.length} nodes`}: ${round((userMs + systemMs) / idleSec)} ms/s (system ${round(systemMs / idleSec)})`;
    });
    log(`idle CPU by process: ${perProcess.join('; ')}`);
    if (process.env['LASHUP_BENCH_DEBUG'] === '1') {
      const counters = [
        'libp2p.dials',
        'libp2p.streamsOpened',
        'libp2p.streamsAccepted',
        'libp2p.connectionsOpened',
        'libp2p.peerStoreShortcut.skipped',
        'libp2p.peerStoreShortcut.merged',
        'antiEntropy.roundsStarted',
        'membership.probes',
        'udp.packetsSent',
        'kv.remoteDeltasReceived',
      ];
      log(`nodes=${nodes}: idle window totals over ${round(idleSec)} s: ${counters.map((c) => `${c}=${sumStat(nodeStats(after), c) - sumStat(nodeStats(before), c)}`).join(' ')}`);
    }
    const idleBytesPerNodeSec = (txAfter - txBefore) / idleSec / nodes;
    const rssMiBPerNode = after.slice(0, processes).reduce((s, e) => s + (e.rssBytes as number), 0) / 2 ** 20 / rest;
    const singleNodeRssMiB = summarize(after.slice(processes).map((e) => (e.rssBytes as number) / 2 ** 20)).p50;
    if (process.env['LASHUP_BENCH_DEBUG'] === '1') log(`memory of the one-node processes: ${JSON.stringify(after.slice(processes).map((e) => e['memory']))}`);

    // Updates.
    const owner = new Map<string, WorkerHandle>();
    for (const [w, names] of placement) for (const n of names) owner.set(n, w);
    const everyone = [...owner.keys()];
    const applied = new Map<string, Map<string, number>>();
    for (const w of all) {
      w.onEvent((e) => {
        if (e.evt !== 'applied') return;
        let at = applied.get(e.key as string);
        if (at === undefined) {
          at = new Map();
          applied.set(e.key as string, at);
        }
        if (!at.has(e.node as string)) at.set(e.node as string, e.atMs as number);
      });
    }
    const updateMs: number[] = [];
    let updatesLost = 0;
    const beforeUpdates = await stats(all);
    const updatesStart = now();
    let afterUpdates: WorkerEvent[] = [];
    let updatesSec = 0;
    await profileWindow('updates', async () => {
      for (let u = 0; u < 100; u++) {
        const writer = everyone[(u * 7919) % everyone.length] as string;
        const key = `bench/${nodes}/${u}`;
        (owner.get(writer) as WorkerHandle).send({ cmd: 'update', node: writer, key, value: u });
        try {
          await until(() => (applied.get(key)?.size ?? 0) === everyone.length, 5000, key);
          const at = applied.get(key) as Map<string, number>;
          updateMs.push(Math.max(...at.values()) - (at.get(writer) as number));
        } catch {
          updatesLost++;
        }
        await sleep(20);
      }
      afterUpdates = await stats(all);
      updatesSec = (now() - updatesStart) / 1000;
    });
    // The CPU the updates cost, summed over every process, above the idle rate measured above:
    // on a 2-core machine the last node cannot apply an update before about half of it is spent.
    const updatesCpuMs = afterUpdates.reduce((sum, e, i) => {
      const b = beforeUpdates[i] as WorkerEvent;
      return sum + ((e.cpuUserUs as number) - (b.cpuUserUs as number) + (e.cpuSystemUs as number) - (b.cpuSystemUs as number)) / 1000;
    }, 0);
    const idleCpuMsPerSec = cpuUs / 1000 / idleSec;
    const updateCpuMs = Math.max(0, (updatesCpuMs - idleCpuMsPerSec * updatesSec) / 100);
    log(`nodes=${nodes}: update-to-all p50 ${round(summarize(updateMs).p50)} ms p99 ${round(summarize(updateMs).p99)} ms; ${round(updateCpuMs)} ms of CPU per update over all processes`);
    sample(await stats(all));

    // Kills.
    const killToFailedMs: number[] = [];
    for (const victim of victimWorkers) {
      const name = (placement.get(victim) as string[])[0] as string;
      killed.add(name);
      const failedAt = new Map<string, number>();
      /** Debug: when each survivor first suspected the victim. */
      const suspectedAt = new Map<string, number>();
      const stop = all.map((w) =>
        w.onEvent((e) => {
          if (e.evt !== 'member' || e.member !== name) return;
          if (e.type === 'failed' && !failedAt.has(e.node as string)) failedAt.set(e.node as string, e.atMs as number);
          if (e.type === 'suspect' && !suspectedAt.has(e.node as string)) suspectedAt.set(e.node as string, e.atMs as number);
        }),
      );
      const survivors = everyone.filter((n) => !killed.has(n));
      const t0 = now();
      victim.kill('SIGKILL');
      try {
        await until(() => survivors.every((n) => failedAt.has(n)), 30_000, `${name} failed everywhere`);
        killToFailedMs.push(Math.max(...failedAt.values()) - t0);
      } catch {
        killToFailedMs.push(NaN);
      }
      for (const s of stop) s();
      log(`nodes=${nodes}: SIGKILL of ${name} -> failed at all in ${round(killToFailedMs[killToFailedMs.length - 1] as number)} ms`);
      if (process.env['LASHUP_BENCH_DEBUG'] === '1') {
        // Whether a slow detection was a late first suspicion or a slow way from suspicion to failed.
        const rel = (m: Map<string, number>): string =>
          [...m.entries()]
            .sort((a, b) => a[1] - b[1])
            .slice(0, 8)
            .map(([n, at]) => `${n} ${Math.round(at - t0)}`)
            .join(', ');
        const failed = [...failedAt.values()].map((at) => at - t0);
        log(
          `nodes=${nodes}: ${name}: first suspicions (ms after the kill): ${rel(suspectedAt)} (${suspectedAt.size} suspecters); first failed: ${rel(failedAt)}; failed p50 ${round(quantile(failed, 0.5))} ms, last ${round(quantile(failed, 1))} ms`,
        );
      }
      await sleep(2000);
    }
    const connectionsMax = Math.max(...connections);
    const connectionsMean = connections.reduce((a, b) => a + b, 0) / connections.length;
    return {
      updateMs,
      updatesLost,
      updateCpuMs,
      killToFailedMs,
      falseFailures,
      falseFailuresInFormation,
      idleCpuPercentPerNode,
      idleBytesPerNodeSec,
      rssMiBPerNode,
      singleNodeRssMiB,
      formationMs,
      connectionsMax,
      connectionsMean,
    };
  } finally {
    for (const w of all) w.kill('SIGKILL');
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
}

const bench: Benchmark = {
  name: 'cluster',
  description: 'live clusters on 127.0.0.1: formation, connections per node, update-to-all latency, SIGKILL-to-failed, idle CPU, bytes and memory per node',
  async run(ctx): Promise<BenchResult> {
    const sizes = ctx.sizes ?? (ctx.quick ? [10] : [10, 60, 200]);
    const rows: Record<string, Cell>[] = [];
    const targets: TargetCheck[] = [];
    for (const nodes of sizes) {
      const rc = measureRowCost(nodes);
      ctx.log(
        `nodes=${nodes}: signed row: sign p50 ${round(rc.signUs.p50)} us; join with check p50 ${round(rc.checkedJoinUs.p50)} us vs ${round(rc.plainJoinUs.p50)} us without; ${round(rc.clusterCpuMsPerUpdate)} ms of CPU per update over the cluster`,
      );
      const r = await run(nodes, ctx.log);
      const u = summarize(r.updateMs);
      const k = summarize(r.killToFailedMs);
      rows.push({
        nodes,
        processes: Math.min(8, nodes - 6) + 6,
        'formation ms': r.formationMs,
        'connections/node max': r.connectionsMax,
        'connections/node mean': round(r.connectionsMean),
        'update p50 ms': round(u.p50),
        'update p99 ms': round(u.p99),
        'update max ms': round(u.max),
        'updates lost': r.updatesLost,
        'update CPU ms (all processes)': round(r.updateCpuMs),
        'kill->failed p50 ms': round(k.p50),
        'kill->failed p99 ms': round(k.p99),
        'false failures': r.falseFailures,
        'of them in formation': r.falseFailuresInFormation,
        'idle CPU %/node': round(r.idleCpuPercentPerNode),
        'idle bytes/s/node': round(r.idleBytesPerNodeSec),
        'RSS MiB/node': round(r.rssMiBPerNode),
        'RSS MiB 1-node process': round(r.singleNodeRssMiB),
        'row sign us p50': round(rc.signUs.p50),
        'row join+check us p50': round(rc.checkedJoinUs.p50),
        'row join us p50 (no check)': round(rc.plainJoinUs.p50),
        'row CPU ms/update (cluster)': round(rc.clusterCpuMsPerUpdate),
      });
      const killMet = k.p99 < 4000 && r.killToFailedMs.every((x) => Number.isFinite(x));
      if (nodes === 60) {
        targets.push({ name: 'formation, N=60', target: '< 10,000 ms', measured: `${r.formationMs} ms`, met: r.formationMs < 10_000 });
        targets.push({ name: 'update to all, p99, N=60', target: '< 50 ms', measured: `${round(u.p99)} ms`, met: u.p99 < 50 && r.updatesLost === 0 });
        targets.push({ name: 'SIGKILL to failed at all, p99, N=60', target: '< 4,000 ms', measured: `${round(k.p99)} ms`, met: killMet });
        targets.push({ name: 'idle CPU per node, N=60', target: '<= 0.2% of a core', measured: `${round(r.idleCpuPercentPerNode)}%`, met: r.idleCpuPercentPerNode <= 0.2 });
      }
      if (nodes === 200) {
        targets.push({ name: 'formation, N=200', target: '< 60,000 ms', measured: `${r.formationMs} ms`, met: r.formationMs < 60_000 });
        targets.push({ name: 'connections per node, N=200 (max)', target: '<= 20', measured: String(r.connectionsMax), met: r.connectionsMax <= 20 });
        targets.push({ name: 'update to all, p99, N=200', target: '< 200 ms', measured: `${round(u.p99)} ms`, met: u.p99 < 200 && r.updatesLost === 0 });
        targets.push({ name: 'SIGKILL to failed at all, p99, N=200', target: '< 4,000 ms', measured: `${round(k.p99)} ms`, met: killMet });
      }
      if (nodes >= 60) targets.push({ name: `false failures, N=${nodes}`, target: '0', measured: String(r.falseFailures), met: r.falseFailures === 0 });
      if (nodes === sizes[sizes.length - 1]) targets.push({ name: 'RSS of a one-node process', target: '<= 80 MiB', measured: `${round(r.singleNodeRssMiB)} MiB`, met: r.singleNodeRssMiB <= 80 });
    }
    return {
      parameters: {
        sizes,
        layout: '3 seeds and 3 victims in single-node processes; the other N - 6 nodes over up to 8 processes',
        nodeFlags:
          process.env['LASHUP_BENCH_WORKER_FLAGS'] ??
          `one-node processes: ${DAEMON_NODE_FLAGS.join(' ')} with ${Object.entries(DAEMON_ENV)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}; multi-node processes: Node's defaults`,
        packetTransport: 'udp',
        membershipProfile: 'lan (defaults)',
        peerDegree: 5,
        updates: 100,
        idleWindowSec: IDLE_WINDOW_MS / 1000,
        machine: '2 cores shared by every process',
      },
      rows,
      targets,
      notes: [
        'bytes/s/node counts everything on the loopback interface (SWIM over UDP, libp2p, TCP/IP headers) divided by N',
        "RSS MiB/node divides the multi-node processes' resident memory by their nodes (the runtime is shared); the single-node figure is a whole process",
        'CPU includes the Node.js runtime of each process',
        'update CPU: the CPU of every process while the 100 updates ran, less the idle rate, per update: what one update costs the whole cluster (2 cores run it all)',
        'SIGKILL to failed: 3 kills per size, so its p99 is the worst of the three',
        "row columns: one agent's signed overlay entry per update, measured in the parent process on the daemon's code (sign at the writer; the store's admission check at a replica vs the same join without it; cluster CPU = sign + (N - 1) x the check's extra)",
      ],
    };
  },
};

export default bench;
