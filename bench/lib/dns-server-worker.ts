/**
 * The DNS benchmark's lashup server, in a process of its own (as the daemon runs it, and as
 * dnsmasq runs beside it): `node dns-server-worker.js RECORDS PORT`. Builds a catalog of RECORDS
 * tasks (`t<i>.f<i mod 50>`, one container address each, on 10 agents), listens on
 * 127.0.0.1:PORT (0: any) and prints `ready <port>`. Ends on SIGTERM.
 */
import '../../src/polyfills.js';
import { DnsServer, TaskCatalog, type TaskRecord } from '../../src/dns/index.js';
import { benchRecords } from './dns-records.js';

const [recordsArg, portArg] = process.argv.slice(2);
const records = benchRecords(Number(recordsArg));
const byAgent = new Map<string, TaskRecord[]>();
for (const r of records) {
  const list = byAgent.get(r.agent) ?? [];
  list.push({ framework: r.framework, task: r.task, ips: [r.ip], agentIp: r.agentIp });
  byAgent.set(r.agent, list);
}
const catalog = new TaskCatalog();
catalog.replace(byAgent);
const server = new DnsServer({ listen: ['127.0.0.1'], port: Number(portArg ?? 0), zone: 'dcos.thisdcos.directory', ttlSeconds: 5, catalog, down: () => false, upstreams: [], upstreamTimeoutMs: 1000 });
await server.listen();
process.stdout.write(`ready ${server.port}\n`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
