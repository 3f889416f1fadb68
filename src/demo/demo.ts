/**
 * `lashup demo`: as root, 3 masters and N agents in network namespaces, two containers per
 * agent attached through CNI (bridge + lashup-ipam), every container pinging every other; prints members, allocations,
 * convergence time and the ping matrix, and removes everything (also on Ctrl-C).
 */
import { NetnsCluster } from './cluster.js';
import { runLocalDemo } from './local.js';
import { eventually } from './netns.js';

export interface DemoOptions {
  agents: number;
  command: string[];
  out(text: string): void;
  err(text: string): void;
}

export async function runDemo(options: DemoOptions): Promise<number> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return runLocalDemo(options);
  const started = Date.now();
  options.out(`building 3 masters and ${options.agents} agents in network namespaces...\n`);
  const cluster = await NetnsCluster.create({ agents: options.agents, command: options.command, prefix: 'lxd' });
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    options.err('\ninterrupted: removing the demo namespaces\n');
    void cluster.destroy().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const converged = await cluster.converge(120_000);
    const convergedMs = Date.now() - started;
    if (!converged) {
      options.err(`the cluster did not converge within 120 s; daemon logs:\n${[...cluster.nodes.values()].map((n) => `${n.name}: ${n.log.slice(-600)}`).join('\n')}\n`);
      return 1;
    }
    options.out(`converged in ${(convergedMs / 1000).toFixed(1)} s (namespaces, daemon start, election, leases, routes)\n\n`);
    // Containers attach as a runtime attaches them: the bridge plugin chained with lashup-ipam.
    for (const a of cluster.agents) {
      for (const k of [1, 2]) {
        const out = await cluster.cni(a.name, 'ADD', `${a.name}-c${k}`);
        if (out.code !== 0) {
          options.err(`CNI ADD on ${a.name} failed: ${out.stdout} ${out.stderr}\n`);
          return 1;
        }
      }
    }
    const members = await cluster.cli('m1', ['members']);
    options.out('members (seen by m1):\n');
    for (const m of JSON.parse(members.stdout || '[]') as { name: string; state: string; role: string; underlayIp: string }[])
      options.out(`  ${m.name.padEnd(4)} ${m.role.padEnd(7)} ${m.state.padEnd(6)} ${m.underlayIp}\n`);
    options.out('\nallocations:\n');
    for (const a of cluster.agents) {
      const lease = cluster.leaseOf(a.name);
      options.out(`  ${a.name.padEnd(4)} dcos ${lease?.networks['dcos']?.subnet ?? '-'}  dcos6 ${lease?.networks['dcos6']?.subnet6 ?? '-'}  vtep ${lease?.vtepIp} ${lease?.vtepMac}\n`);
    }
    options.out('\nping matrix (rows ping columns):\n');
    const cs = cluster.containers;
    options.out(`${''.padEnd(16)}${cs.map((c) => c.ip.padEnd(12)).join('')}\n`);
    let failures = 0;
    for (const from of cs) {
      let row = `${from.ip.padEnd(16)}`;
      for (const to of cs) {
        if (from === to) {
          row += '-'.padEnd(12);
          continue;
        }
        const ok = await eventually(() => cluster.net.ping(from.ns, to.ip, 1, 1), 10_000);
        if (!ok) failures++;
        row += (ok ? 'ok' : 'FAIL').padEnd(12);
      }
      options.out(`${row}\n`);
    }
    options.out(`\n${failures === 0 ? 'every container reaches every other' : `${failures} pairs failed`} (${cs.length} containers on ${cluster.agents.length} agents)\n`);
    return failures === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) await cluster.destroy();
    options.out('removed every namespace and process the demo made\n');
  }
}
