/**
 * The dataplane on a real kernel (root; inside a network namespace this benchmark creates and
 * removes): a reconciler programs N remote agents (N routes, N permanent neighbours, N FDB
 * entries) onto a VTEP from empty, changes one agent at a time, then removes them all; the same
 * entries through `ip -batch` + `bridge -batch` (files prepared beforehand, process start
 * included) in the same run are the baseline. Then a flood of 2N foreign route notifications
 * while the reconciler listens: the daemon must not abort.
 */
import '../src/polyfills.js';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round, summarize } from './lib/stats.js';
import type { DataplaneSamples } from './lib/dataplane-samples.js';
import type { Benchmark, BenchResult, Cell, TargetCheck } from './lib/types.js';

const here = dirname(fileURLToPath(import.meta.url));

function runWorker(ns: string, args: string[]): Promise<DataplaneSamples> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, join(here, 'lib', 'dataplane-worker.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20 * 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`dataplane worker exited with ${signal ?? code} (a process abort counts as a failure): ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() as string) as DataplaneSamples);
      } catch (e) {
        reject(new Error(`unreadable worker output: ${out.slice(-500)} ${String(e)}`));
      }
    });
  });
}

const bench: Benchmark = {
  name: 'dataplane',
  description: 'reconciler on a real kernel vs ip -batch / bridge -batch: program N agents, one-agent changes, remove all, notification flood',
  async run({ quick, log }): Promise<BenchResult> {
    if (process.getuid?.() !== 0) throw new Error('the dataplane benchmark needs root (it creates a network namespace)');
    const agents = quick ? 2000 : 10_000;
    const reps = quick ? 2 : 5;
    const changes = quick ? 9 : 30;
    const ns = `lxb-${process.pid}-dp`;
    const baseNs = `lxb-${process.pid}-base`;
    let s: DataplaneSamples;
    try {
      for (const name of [ns, baseNs]) {
        const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
        if (add.status !== 0) throw new Error(`cannot create namespace ${name}: ${add.stderr}`);
      }
      log(`${agents} agents x ${reps} repetitions; lashup in namespace ${ns}, iproute2 in ${baseNs}`);
      s = await runWorker(ns, [String(agents), String(reps), String(changes), baseNs]);
    } finally {
      for (const name of [ns, baseNs]) spawnSync('ip', ['netns', 'del', name]);
    }
    const row = (measure: string, values: number[], unit = 'ms'): Record<string, Cell> => {
      const d = summarize(values);
      return { measure, n: d.n, [`p50 ${unit}`]: round(d.p50), [`p99 ${unit}`]: round(d.p99), [`max ${unit}`]: round(d.max) };
    };
    const ratios = s.programMs.map((v, i) => v / (s.baselineProgramMs[i] as number));
    const removeRatios = s.removeMs.map((v, i) => v / (s.baselineRemoveMs[i] as number));
    const rows = [
      row(`lashup: program ${agents} agents (${3 * agents} entries) from empty`, s.programMs),
      row('iproute2: same entries, ip -batch + bridge -batch', s.baselineProgramMs),
      row('ratio lashup / iproute2, program', ratios, 'x'),
      row(`lashup: remove all ${agents} agents`, s.removeMs),
      row('iproute2: remove the same entries', s.baselineRemoveMs),
      row('ratio lashup / iproute2, remove', removeRatios, 'x'),
      row('lashup: one-agent change, apply to converged', s.changeMs),
      row('lashup: one-agent change, kernel operations', s.changeOps, 'ops'),
      row(
        'lashup: one-agent change not meeting a full resync',
        s.changeMs.filter((_, i) => s.changeResynced[i] !== true),
      ),
    ];
    const resyncHits = s.changeResynced.filter(Boolean).length;
    const ratio = summarize(ratios);
    const change = summarize(s.changeMs);
    const changeOps = Math.max(...s.changeOps);
    const targets: TargetCheck[] = [
      {
        name: 'full program vs iproute2 batch (p50 of per-repetition ratios)',
        target: '<= 1.0x',
        measured: `${round(ratio.p50)}x (p99 ${round(ratio.p99)}x; lashup p50 ${round(summarize(s.programMs).p50)} ms, iproute2 p50 ${round(summarize(s.baselineProgramMs).p50)} ms)`,
        met: ratio.p50 <= 1,
      },
      { name: 'one-agent change, kernel operations (max)', target: '<= 3', measured: String(changeOps), met: changeOps <= 3 },
      { name: 'one-agent change, time (p99)', target: '< 5 ms', measured: `${round(change.p99)} ms (p50 ${round(change.p50)} ms)`, met: change.p99 < 5 },
      {
        name: `notification flood of ${s.flood['entries']} route changes`,
        target: 'no process abort',
        measured: `daemon alive; helper restarts ${s.flood['helperRestarts']}, notifications seen ${s.flood['notificationsSeen']}, losses ${s.flood['notificationLosses']}`,
        met: s.flood['daemonAlive'] === true,
      },
    ];
    return {
      parameters: { agents, repetitions: reps, changesPerRepetition: changes, entriesPerAgent: 3, inFlightLimit: s.inFlightLimit },
      rows,
      targets,
      notes: [
        'Both sides start from an identical VTEP with no entries, each in its own namespace (lashup would otherwise own and remove the permanent entries iproute2 writes on its VTEP); iproute2 batch files are written before timing; its process start is included (it is what an operator would run).',
        'lashup time covers setting the desired state, planning, netlink I/O and acknowledgements, with its notification helper running.',
        `Flood: ${JSON.stringify(s.flood)}`,
        `${resyncHits} of ${s.changeMs.length} one-agent changes waited for a full resync (periodic, every 60 s, or forced by a notification loss) of the ${3 * agents}-entry view.`,
        ...(s.checks.length > 0 ? [`CHECKS FAILED: ${s.checks.join('; ')}`] : ['Entry counts checked after every program and removal.']),
      ],
    };
  },
};

export default bench;
