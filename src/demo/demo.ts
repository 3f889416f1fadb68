/**
 * `lashup demo`: as root, 3 masters and N agents in network namespaces, containers on every
 * agent, every container pinging every other; prints members, allocations, convergence time
 * and the ping matrix, and removes everything (also on Ctrl-C). Networks: DC/OS's, plus `dev`
 * and `prod` (prod lets dev in; nothing else crosses networks). Containers per agent: CNI ones
 * (bridge + lashup-ipam) on dcos, dev and prod and, when dockerd and busybox-static are
 * installed, a Docker one on dcos (a dockerd of its own in the agent's namespace, on the Docker
 * network lashup keeps; without Docker, a second CNI one on dcos). The matrix marks each pair
 * reached or refused, as the isolation policy says. Every container is a named task (CNI_ARGS,
 * Docker labels): the demo shows each name answered by another agent's DNS server. Last, a
 * service of three tasks behind the named VIP /web:80, reached by a client on every agent.
 */
import { existsSync } from 'node:fs';
import { NetnsCluster } from './cluster.js';
import { BUSYBOX, busyboxImageTarball, DOCKERD, type Dockerd, unmountUnder } from './dockerd.js';
import { runLocalDemo } from './local.js';
import { eventually } from './netns.js';
import { vipDemo } from './vip-demo.js';

/**
 * The demo's overlay: DC/OS's networks, plus `dev` and `prod` to show isolation: prod lets dev
 * open connections into it, nothing else crosses networks.
 */
const DEMO_OVERLAY = {
  networks: [
    { name: 'dcos', subnet: '9.0.0.0/8', prefix: 24 },
    { name: 'dcos6', subnet6: 'fd01:b::/64', prefix6: 80 },
    { name: 'dev', subnet: '10.10.0.0/16', prefix: 24 },
    { name: 'prod', subnet: '10.20.0.0/16', prefix: 24, allowFrom: ['dev'] },
  ],
};

/** Whether the demo's policy lets a container of `from` open a connection to one of `to`. */
function allowed(from: string, to: string): boolean {
  if (from === to) return true;
  const net = DEMO_OVERLAY.networks.find((n) => n.name === to) as { allowFrom?: string[] } | undefined;
  return net?.allowFrom?.includes(from) === true;
}

/** One container of the ping matrix. */
interface DemoContainer {
  net: string;
  label: string;
  ip: string;
  /** Its task name (framework `demo`), and the agent it runs on. */
  task: string;
  agent: string;
  /** Its network namespace (CNI containers only). */
  ns?: string;
  ping(to: string): Promise<boolean>;
}

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
  const cluster = await NetnsCluster.create({ agents: options.agents, command: options.command, prefix: 'lxd', overlay: DEMO_OVERLAY });
  let interrupted = false;
  const dockerds: Dockerd[] = [];
  const onSignal = (): void => {
    interrupted = true;
    options.err('\ninterrupted: removing the demo namespaces\n');
    void Promise.all(dockerds.map((d) => d.stop()))
      .then(() => unmountUnder(cluster.root))
      .then(() => cluster.destroy())
      .then(() => process.exit(130));
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
    const withDocker = DOCKERD !== undefined && existsSync(BUSYBOX);
    const cs: DemoContainer[] = [];
    for (const a of cluster.agents) {
      for (const net of withDocker ? ['dcos', 'dev', 'prod'] : ['dcos', 'dcos', 'dev', 'prod']) {
        const k = cs.filter((c) => c.label.startsWith(`${a.name} `)).length + 1;
        // Each container is a named task (CNI_ARGS), resolvable on every node's DNS server.
        const out = await cluster.cni(a.name, 'ADD', `${a.name}-c${k}`, net, `IgnoreUnknown=1;LASHUP_TASK=${a.name}-c${k};LASHUP_FRAMEWORK=demo`);
        if (out.code !== 0) {
          options.err(`CNI ADD on ${a.name} failed: ${out.stdout} ${out.stderr}\n`);
          return 1;
        }
        const ns = out.ns;
        const ip = ((JSON.parse(out.stdout) as { ips?: { address: string }[] }).ips?.[0]?.address ?? '').split('/')[0] ?? '';
        cs.push({ net, label: `${a.name} ${net}`, ip, task: `${a.name}-c${k}`, agent: a.name, ns, ping: (to) => cluster.net.ping(ns, to, 1, 1) });
      }
    }
    if (withDocker) {
      options.out('starting a dockerd per agent (Docker networks made by lashup)...\n');
      const tarball = await busyboxImageTarball(cluster.root);
      for (const a of cluster.agents) {
        const d = await cluster.startDockerd(a.name);
        dockerds.push(d);
        const ready = await eventually(async () => (await d.docker(['network', 'inspect', 'dcos'])).code === 0, 30_000, 250);
        const imported = await d.docker(['import', tarball, 'lashup-demo/busybox:1']);
        const started = await d.docker([
          'run',
          '-d',
          '--name',
          'demo',
          '--network',
          'dcos',
          '--label',
          `lashup.task=${a.name}-docker`,
          '--label',
          'lashup.framework=demo',
          'lashup-demo/busybox:1',
          'sleep',
          '3600',
        ]);
        if (!ready || imported.code !== 0 || started.code !== 0) {
          options.err(`Docker on ${a.name} failed: ${ready ? '' : 'no dcos network; '}${imported.stderr}${started.stderr}\n`);
          return 1;
        }
        const ip = (await d.docker(['inspect', '--format', '{{.NetworkSettings.Networks.dcos.IPAddress}}', 'demo'])).stdout.trim();
        cs.push({
          net: 'dcos',
          label: `${a.name} dcos/d`,
          ip,
          task: `${a.name}-docker`,
          agent: a.name,
          ping: async (to) => (await d.docker(['exec', 'demo', 'ping', '-c', '1', '-W', '1', to], 15_000)).code === 0,
        });
      }
    } else options.out('(dockerd or busybox-static not installed: CNI containers only)\n');
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
    options.out(`${''.padEnd(28)}${cs.map((c) => c.ip.padEnd(12)).join('')}\n`);
    let failures = 0;
    for (const from of cs) {
      let row = `${from.label.padEnd(12)}${from.ip.padEnd(16)}`;
      for (const to of cs) {
        if (from === to) {
          row += '-'.padEnd(12);
          continue;
        }
        // Allowed pairs get time to converge; refused ones two tries.
        const want = allowed(from.net, to.net);
        const ok = want ? await eventually(() => from.ping(to.ip), 10_000) : (await from.ping(to.ip)) || (await from.ping(to.ip));
        if (ok !== want) failures++;
        row += (ok === want ? (ok ? 'ok' : 'refused') : ok ? 'LEAK' : 'FAIL').padEnd(12);
      }
      options.out(`${row}\n`);
    }
    options.out(
      `\n${failures === 0 ? 'every pair as the policy says' : `${failures} pairs differ from the policy`} (${cs.length} containers on ${cluster.agents.length} agents; prod lets dev in, networks are otherwise isolated; refused: dropped by the isolation rules, LEAK: reached though refused, FAIL: refused though allowed)\n`,
    );
    // Names: every task's containerip name, as another agent's DNS server answers it.
    options.out("\nnames (containerip, answered by another agent's DNS server; `lashup dns NAME`):\n");
    const agents = cluster.agents.map((a) => a.name);
    let unresolved = 0;
    for (const c of cs) {
      const name = `${c.task}.demo.containerip.dcos.thisdcos.directory`;
      const asker = agents.find((n) => n !== c.agent) ?? c.agent;
      let answer: string[] = [];
      await eventually(async () => {
        answer = ((JSON.parse((await cluster.cli(asker, ['dns', name])).stdout || '{}') as { A?: string[] }).A ?? []) as string[];
        return answer.includes(c.ip);
      }, 10_000);
      if (!answer.includes(c.ip)) unresolved++;
      options.out(`  ${name.padEnd(50)} on ${asker.padEnd(4)} ${answer.join(', ') || 'NXDOMAIN'}${answer.includes(c.ip) ? '' : `  (expected ${c.ip})`}\n`);
    }
    options.out(`${unresolved === 0 ? 'every name resolves everywhere' : `${unresolved} names did not resolve`}\n`);
    // VIPs: a client container (CNI, on dcos) on every agent.
    const clients = new Map<string, string>();
    for (const c of cs) if (c.net === 'dcos' && c.ns !== undefined && !clients.has(c.agent)) clients.set(c.agent, c.ns);
    const vipFailures = await vipDemo(cluster, clients, options.out);
    options.out(`${vipFailures === 0 ? 'every client reaches the service through its VIP' : `${vipFailures} connections through the VIP failed`}\n`);
    return failures === 0 && unresolved === 0 && vipFailures === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const d of dockerds) {
      await d.docker(['rm', '-f', '-t', '0', 'demo']);
      await d.stop();
    }
    await unmountUnder(cluster.root);
    if (!interrupted) await cluster.destroy();
    options.out('removed every namespace and process the demo made\n');
  }
}
