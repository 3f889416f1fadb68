/**
 * The demo's VIP part (issue 21): a small service of three tasks, one per agent (the first
 * three), each declaring the named VIP `/web:80:8080` through CNI_ARGS; once every agent
 * programs it, a client container on every agent opens a few connections to the VIP's address
 * (as `web.demo.l4lb.<zone>` resolves on that agent) and the demo shows which backends answered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { NetnsCluster } from './cluster.js';
import { eventually, run } from './netns.js';

const ZONE = 'dcos.thisdcos.directory';
const CONNECTIONS = 6;

/** The backend: answers every connection with its task name and closes; exits by itself after 10 minutes. */
const server = (name: string): string =>
  `require('net').createServer((c)=>{c.on('error',()=>{});c.end(${JSON.stringify(`${name}\n`)})}).listen(8080,()=>console.log('ready'));setTimeout(()=>process.exit(0),600000);`;

/** The client: CONNECTIONS connections one after another; prints the answers as JSON (each bounded by 3 s). */
const client = (ip: string): string =>
  `const net=require('net');const out=[];const one=(i)=>{if(i===${CONNECTIONS}){console.log(JSON.stringify(out));return;}` +
  `const c=net.connect(80,'${ip}');let d='';c.setTimeout(3000,()=>c.destroy());c.on('data',(x)=>d+=x);` +
  `c.on('error',(e)=>d='error:'+e.code);c.on('close',()=>{out.push(d.trim()||'none');one(i+1);});};one(0);`;

/** Runs the VIP part; `clients` are one container namespace per agent. Returns the number of failed connections. */
export async function vipDemo(cluster: NetnsCluster, clients: ReadonlyMap<string, string>, out: (text: string) => void): Promise<number> {
  const agents = cluster.agents.slice(0, 3).map((a) => a.name);
  const servers: ChildProcess[] = [];
  try {
    for (const agent of agents) {
      const added = await cluster.cni(agent, 'ADD', `web-${agent}`, 'dcos', `IgnoreUnknown=1;LASHUP_TASK=web-${agent};LASHUP_FRAMEWORK=demo;LASHUP_VIPS=/web:80:8080`);
      if (added.code !== 0) {
        out(`CNI ADD of web-${agent} failed: ${added.stdout} ${added.stderr}\n`);
        return CONNECTIONS * clients.size;
      }
      const child = spawn('ip', ['netns', 'exec', added.ns, process.execPath, '-e', server(`web-${agent}`)], { stdio: ['ignore', 'pipe', 'ignore'] });
      servers.push(child);
      await new Promise<void>((resolve) => {
        child.stdout?.once('data', () => resolve());
        child.once('exit', () => resolve());
      });
    }
    // Every agent programs the VIP with its three backends (the address comes from the masters).
    let address = '';
    const programmed = await eventually(async () => {
      for (const a of cluster.agents) {
        const view = JSON.parse((await cluster.cli(a.name, ['vips'])).stdout || '{}') as { vips?: { name?: string; address: string; backends: unknown[] }[]; rules?: { converged: boolean } };
        const web = view.vips?.find((v) => v.name === 'web.demo' && v.address.includes('.'));
        if (web === undefined || web.backends.length !== agents.length || view.rules?.converged !== true) return false;
        address = web.address;
      }
      return true;
    }, 30_000);
    out(`\nVIP /web:80 (web.demo.l4lb.${ZONE} -> ${address || '?'}; \`lashup vips\`), backends ${agents.map((a) => `web-${a}`).join(', ')}:\n`);
    if (!programmed) {
      out('  not programmed on every agent within 30 s\n');
      return CONNECTIONS * clients.size;
    }
    let failed = 0;
    for (const [agent, ns] of clients) {
      const name = `web.demo.l4lb.${ZONE}`;
      const resolved = ((JSON.parse((await cluster.cli(agent, ['dns', name])).stdout || '{}') as { A?: string[] }).A ?? [])[0] ?? address;
      const result = await run(['ip', 'netns', 'exec', ns, process.execPath, '-e', client(resolved)], 60_000);
      const answers = JSON.parse(result.stdout.trim() || '[]') as string[];
      const tally = new Map<string, number>();
      for (const a of answers) tally.set(a, (tally.get(a) ?? 0) + 1);
      const bad = answers.filter((a) => !a.startsWith('web-')).length + (CONNECTIONS - answers.length);
      failed += bad;
      out(`  client on ${agent.padEnd(4)} ${name} -> ${resolved}: ${answers.length - bad} of ${CONNECTIONS} answered (${[...tally].map(([k, n]) => `${k} ${n}`).join(', ')})\n`);
    }
    return failed;
  } finally {
    for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL');
  }
}
