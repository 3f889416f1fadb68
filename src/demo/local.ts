/**
 * `lashup demo` without root: the same cluster (3 masters, N agents) as daemons in this process
 * on 127.0.0.1, each agent on the fake kernel; prints members, allocations and the routes,
 * neighbours and FDB entries each agent would program.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, parseConfig } from '../daemon/index.js';
import { FakeKernel, LASHUP_ROUTE_PROTOCOL } from '../dataplane/index.js';
import { generateClusterKey } from '../net/index.js';

export interface LocalDemoOptions {
  agents: number;
  out(text: string): void;
  err(text: string): void;
  /** Give up after this many milliseconds. Default 60,000. */
  timeoutMs?: number;
}

export async function runLocalDemo(options: LocalDemoOptions): Promise<number> {
  const started = Date.now();
  const root = mkdtempSync(join(tmpdir(), 'lashup-demo-'));
  const key = generateClusterKey();
  const daemons: Daemon[] = [];
  const kernels = new Map<string, FakeKernel>();
  const masters = ['m1', 'm2', 'm3'];
  options.out(`not root: running 3 masters and ${options.agents} agents in this process on 127.0.0.1, agents on the fake kernel\n`);
  const start = async (name: string, seeds: string[], underlayIp: string): Promise<Daemon> => {
    const config = parseConfig({
      name,
      role: name.startsWith('m') ? 'master' : 'agent',
      underlayIp,
      dataDir: join(root, name),
      masters,
      seeds,
      cluster: { keys: [key] },
      listen: { bindHost: '127.0.0.1', advertiseHost: '127.0.0.1', udpPort: 0, libp2pPort: 0 },
      membership: { profile: 'local' },
      api: { port: 1, socketPath: join(root, name, 'api.sock') },
      cni: { socketPath: join(root, name, 'cni.sock'), confDir: join(root, name, 'net.d') },
      // The dry-run demo touches nothing on the machine: not the host's Docker daemon either.
      docker: { enabled: false },
      dns: { enabled: false },
    });
    config.api.port = 0;
    const kernel = name.startsWith('a') ? new FakeKernel() : undefined;
    if (kernel !== undefined) kernels.set(name, kernel);
    const d = await Daemon.start(config, { ...(kernel === undefined ? {} : { kernel }), firewall: false });
    daemons.push(d);
    return d;
  };
  try {
    const first = await start('m1', [], '127.0.0.1');
    const seed = `127.0.0.1:${/\/tcp\/(\d+)/.exec(first.node.libp2p.multiaddrs[0] ?? '')?.[1]}`;
    for (const m of masters.slice(1)) await start(m, [seed], '127.0.0.1');
    for (let i = 0; i < options.agents; i++) await start(`a${i + 1}`, [seed], `192.0.2.${11 + i}`);
    const agents = daemons.filter((d) => d.config.role === 'agent');
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    const converged = (): boolean =>
      agents.every((a) => {
        const k = kernels.get(a.config.name);
        return a.lease !== undefined && k !== undefined && k.state().routes.filter((r) => r.protocol === LASHUP_ROUTE_PROTOCOL).length === 2 * (agents.length - 1);
      });
    while (!converged()) {
      if (Date.now() > deadline) {
        options.err('the local cluster did not converge in time\n');
        return 1;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    options.out(`converged in ${((Date.now() - started) / 1000).toFixed(1)} s\n\nmembers (seen by m1):\n`);
    for (const m of first.node.membership.members()) options.out(`  ${m.name.padEnd(4)} ${m.state}\n`);
    options.out('\nallocations:\n');
    for (const a of agents)
      options.out(`  ${a.config.name.padEnd(4)} dcos ${a.lease?.networks['dcos']?.subnet}  dcos6 ${a.lease?.networks['dcos6']?.subnet6}  vtep ${a.lease?.vtepIp} ${a.lease?.vtepMac}\n`);
    for (const a of agents) {
      const k = kernels.get(a.config.name) as FakeKernel;
      const s = k.state();
      const name = new Map(s.links.map((l) => [l.ifindex, l.name]));
      options.out(`\n${a.config.name} would program (underlay ${a.config.underlayIp}):\n`);
      for (const r of s.routes.filter((x) => x.protocol === LASHUP_ROUTE_PROTOCOL))
        options.out(`  ip route replace ${r.dst}/${r.prefixLen} via ${r.gateway} dev ${name.get(r.ifindex ?? 0)} onlink proto 76\n`);
      for (const n of s.neighbours.filter((x) => x.permanent)) options.out(`  ip neigh replace ${n.ip} lladdr ${n.mac} dev ${name.get(n.ifindex)} nud permanent\n`);
      for (const f of s.fdb) options.out(`  bridge fdb replace ${f.mac} dev ${name.get(f.ifindex)} dst ${f.dst} self permanent\n`);
    }
    return 0;
  } finally {
    await Promise.all(daemons.map((d) => d.stop(false)));
    rmSync(root, { recursive: true, force: true });
  }
}
