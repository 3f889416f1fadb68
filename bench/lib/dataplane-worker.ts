/**
 * The dataplane benchmark's measuring process. It runs inside a namespace the parent created
 * (`ip netns exec`), so every netlink socket it opens, and every `ip`/`bridge` it runs, acts on
 * that namespace only. argv: agents, repetitions, changes. Prints one JSON line with raw samples.
 */
import '../../src/polyfills.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealClock } from '../../src/common/index.js';
import { openNetlinkKernel, Reconciler } from '../../src/dataplane/index.js';
import { DEFAULT_VTEP_CONFIG, localState, remoteState, vtepMac } from '../../src/vxlan/index.js';
import type { DataplaneSamples } from './dataplane-samples.js';

const [agents = 10_000, reps = 5, changes = 30] = process.argv.slice(2, 5).map(Number);
/** The baseline's own namespace: iproute2 works there, where lashup neither owns nor watches anything. */
const baseNs = process.argv[5] as string;
const dir = mkdtempSync(join(tmpdir(), 'lashup-bench-dp-'));
const config = DEFAULT_VTEP_CONFIG;

/** Remote agent i (from 2): VTEP 44.128.x.y, underlay 198.18.x.y, block 9.x.y.0/24 (IPv4 only, three entries each). */
function remote(i: number, underlayShift = 0): { underlayIp: string; vtepIp: string; vtepMac: string; subnets: string[] } {
  const hi = (i >> 8) & 255;
  const lo = i & 255;
  const vtepIp = `44.${128 + (i >> 16)}.${hi}.${lo}`;
  return { underlayIp: `198.18.${hi}.${(lo + underlayShift) & 255}`, vtepIp, vtepMac: vtepMac(vtepIp), subnets: [`${10 + (i >> 16)}.${hi}.${lo}.0/24`] };
}

function sh(argv: string[], input?: string): number {
  const started = performance.now();
  const r = spawnSync(argv[0] as string, argv.slice(1), { input, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  return performance.now() - started;
}

function count(argv: string[]): number {
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20 });
  return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

const ids = Array.from({ length: agents }, (_, k) => k + 2);
const local = localState(config, {
  underlayIp: '198.19.0.1',
  vtepAddress: '44.128.0.1/10',
  networks: [{ name: 'dcos', mesos: '9.0.1.0/25', mesosGateway: '9.0.1.1', docker: '9.0.1.128/25', dockerGateway: '9.0.1.129' }],
});

function batchFiles(kind: 'add' | 'del'): { ip: string; bridge: string } {
  const ip: string[] = [];
  const br: string[] = [];
  for (const i of ids) {
    const r = remote(i);
    const [subnet] = r.subnets as [string];
    if (kind === 'add') {
      ip.push(`route replace ${subnet} via ${r.vtepIp} dev vtep1024 onlink proto 76`);
      ip.push(`neigh replace ${r.vtepIp} lladdr ${r.vtepMac} dev vtep1024 nud permanent`);
      br.push(`fdb replace ${r.vtepMac} dev vtep1024 dst ${r.underlayIp} self permanent`);
    } else {
      ip.push(`route del ${subnet} dev vtep1024 proto 76`);
      ip.push(`neigh del ${r.vtepIp} dev vtep1024`);
      br.push(`fdb del ${r.vtepMac} dev vtep1024 dst ${r.underlayIp} self`);
    }
  }
  const ipFile = join(dir, `ip-${kind}.batch`);
  const brFile = join(dir, `bridge-${kind}.batch`);
  writeFileSync(ipFile, `${ip.join('\n')}\n`);
  writeFileSync(brFile, `${br.join('\n')}\n`);
  return { ip: ipFile, bridge: brFile };
}

async function main(): Promise<DataplaneSamples> {
  const s: DataplaneSamples = {
    programMs: [],
    removeMs: [],
    baselineProgramMs: [],
    baselineRemoveMs: [],
    changeMs: [],
    changeOps: [],
    changeResynced: [],
    programOps: [],
    flood: {},
    inFlightLimit: 0,
    checks: [],
  };
  const add = batchFiles('add');
  const del = batchFiles('del');
  // The baseline's VTEP: the same device, made by iproute2, in its own namespace.
  sh(['ip', '-n', baseNs, 'link', 'add', 'vtep1024', 'type', 'vxlan', 'id', '1024', 'dstport', '64000', 'local', '198.19.0.1', 'nolearning']);
  sh(['ip', '-n', baseNs, 'link', 'set', 'vtep1024', 'mtu', '1420', 'up']);
  sh(['ip', '-n', baseNs, 'addr', 'add', '44.128.0.1/10', 'dev', 'vtep1024']);
  const kernel = await openNetlinkKernel({});
  s.inFlightLimit = kernel.inFlightLimit;
  const reconciler = new Reconciler({ kernel, clock: new RealClock() });
  reconciler.setDesiredGroup('local', local);
  await reconciler.start();
  await kernel.helperReady();
  const converge = async (): Promise<{ ms: number; ops: number; resynced: boolean }> => {
    const started = performance.now();
    let ops = 0;
    let resynced = false;
    for (let i = 0; i < 10; i++) {
      const r = await reconciler.apply();
      ops += r.ops;
      resynced ||= r.resynced;
      if (r.converged) break;
    }
    return { ms: performance.now() - started, ops, resynced };
  };
  /** Waits until no notification has arrived for 300 ms (at most 20 s). */
  const quiet = async (): Promise<void> => {
    const deadline = performance.now() + 20_000;
    let last = reconciler.stats().notifications;
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      const now = reconciler.stats().notifications;
      if (now === last) break;
      last = now;
    }
    await reconciler.idle();
  };
  for (let rep = 0; rep < reps; rep++) {
    await quiet();
    // iproute2 baseline: the same 3 x agents entries on the same VTEP, batch files prepared in advance.
    const baselineFirst = rep % 2 === 0;
    const baseline = (): void => {
      const program = sh(['ip', '-n', baseNs, '-batch', add.ip]) + sh(['bridge', '-n', baseNs, '-batch', add.bridge]);
      const entries = count(['ip', '-n', baseNs, 'route', 'show', 'proto', '76']);
      if (entries !== agents) s.checks.push(`baseline programmed ${entries} routes, expected ${agents}`);
      const fdbEntries = count(['bridge', '-n', baseNs, 'fdb', 'show', 'dev', 'vtep1024']);
      if (fdbEntries < agents) s.checks.push(`baseline programmed ${fdbEntries} FDB entries, expected ${agents}`);
      const remove = sh(['ip', '-n', baseNs, '-batch', del.ip]) + sh(['bridge', '-n', baseNs, '-batch', del.bridge]);
      const left = count(['ip', '-n', baseNs, 'route', 'show', 'proto', '76']);
      if (left !== 0) s.checks.push(`${left} baseline routes left after removal`);
      s.baselineProgramMs.push(program);
      s.baselineRemoveMs.push(remove);
    };
    if (baselineFirst) baseline();
    // lashup: desired state for every agent, then apply until converged.
    // The desired state arrives in chunks, as store events would, so the reconciler's kernel
    // work (in the netlink thread) overlaps the building of the next chunk.
    const started = performance.now();
    for (let k = 0; k < ids.length; k += 500) {
      for (const i of ids.slice(k, k + 500)) reconciler.setDesiredGroup(`agent/${i}`, remoteState(config, remote(i)));
      await new Promise((r) => setImmediate(r));
    }
    const programmed = await converge();
    s.programMs.push(performance.now() - started);
    s.programOps.push(programmed.ops);
    const routes = count(['ip', 'route', 'show', 'proto', '76']);
    const fdb = count(['bridge', 'fdb', 'show', 'dev', 'vtep1024']);
    if (routes !== agents) s.checks.push(`lashup programmed ${routes} routes, expected ${agents}`);
    if (fdb < agents) s.checks.push(`lashup programmed ${fdb} FDB entries, expected ${agents}`);
    // One-agent changes in steady state, once the echoes of the full program have been read:
    // a moved underlay IP, a removal, an addition back.
    await quiet();
    for (let c = 0; c < changes; c++) {
      const i = ids[(c * 7919 + rep * 104_729) % ids.length] as number;
      const t0 = performance.now();
      if (c % 3 === 0) reconciler.setDesiredGroup(`agent/${i}`, remoteState(config, remote(i, 1)));
      else if (c % 3 === 1) reconciler.setDesiredGroup(`agent/${i}`, undefined);
      else reconciler.setDesiredGroup(`agent/${i}`, remoteState(config, remote(i)));
      const r = await converge();
      s.changeMs.push(performance.now() - t0);
      s.changeOps.push(r.ops);
      s.changeResynced.push(r.resynced);
      if (c % 3 === 1) {
        // Put the agent back (not measured), and let the kernel's notifications about the
        // removal drain: FDB notifications carry no requester, so a late one is indistinguishable
        // from a hand deletion and is repaired (one more replace) by whichever apply comes next.
        reconciler.setDesiredGroup(`agent/${i}`, remoteState(config, remote(i)));
        await converge();
        await quiet();
      }
    }
    const removeStart = performance.now();
    for (const i of ids) reconciler.setDesiredGroup(`agent/${i}`, undefined);
    await converge();
    s.removeMs.push(performance.now() - removeStart);
    const left = count(['ip', 'route', 'show', 'proto', '76']);
    if (left !== 0) s.checks.push(`${left} lashup routes left after removing all`);
    if (!baselineFirst) baseline();
  }
  // Notification flood: agents foreign routes through a dummy device, added and removed by
  // ip -batch while the reconciler listens. The daemon must live; a helper may die and restart.
  // No dummy driver on every kernel; a veth pair with both ends here has carrier just the same.
  sh(['ip', 'link', 'add', 'flood0', 'type', 'veth', 'peer', 'name', 'flood1']);
  sh(['ip', 'link', 'set', 'flood0', 'up']);
  sh(['ip', 'link', 'set', 'flood1', 'up']);
  const floodAdd: string[] = [];
  const floodDel: string[] = [];
  for (let i = 0; i < agents; i++) {
    floodAdd.push(`route add 100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 dev flood0`);
    floodDel.push(`route del 100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 dev flood0`);
  }
  const before = reconciler.stats();
  const startsBefore = kernel.helperStarts;
  writeFileSync(join(dir, 'flood-add'), `${floodAdd.join('\n')}\n`);
  writeFileSync(join(dir, 'flood-del'), `${floodDel.join('\n')}\n`);
  sh(['ip', '-batch', join(dir, 'flood-add')]);
  sh(['ip', '-batch', join(dir, 'flood-del')]);
  await new Promise((r) => setTimeout(r, 1500));
  await reconciler.idle();
  const after = reconciler.stats();
  s.flood = {
    entries: agents * 2,
    daemonAlive: true,
    notificationsSeen: after.notifications - before.notifications,
    notificationLosses: after.notificationLosses - before.notificationLosses,
    helperRestarts: kernel.helperStarts - startsBefore,
    convergedAfter: (await converge()).ops >= 0 && reconciler.stats().converged,
  };
  sh(['ip', 'link', 'del', 'flood0']);
  s.flood['resyncReasons'] = JSON.stringify(reconciler.stats().resyncReasons);
  s.flood['failedOps'] = JSON.stringify(
    Object.fromEntries(
      Object.entries(reconciler.stats().ops)
        .filter(([, v]) => v.failed > 0)
        .map(([k, v]) => [k, v.failed]),
    ),
  );
  s.flood['helperStartsTotal'] = kernel.helperStarts;
  s.flood['echoesSkipped'] = kernel.echoesDropped;
  await reconciler.stop();
  await kernel.close();
  return s;
}

main().then(
  (s) => {
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`${JSON.stringify(s)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
