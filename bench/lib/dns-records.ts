/** The DNS benchmark's records: the same tasks for lashup's catalog and dnsmasq's hosts file. */

export interface BenchRecord {
  task: string;
  framework: string;
  agent: string;
  agentIp: string;
  /** The container address. */
  ip: string;
  /** Its containerip name. */
  name: string;
}

export function benchRecords(count: number, zone = 'dcos.thisdcos.directory'): BenchRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const task = `t${i}`;
    const framework = `f${i % 50}`;
    const agent = `a${i % 10}`;
    return { task, framework, agent, agentIp: `192.0.2.${10 + (i % 10)}`, ip: `9.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, name: `${task}.${framework}.containerip.${zone}` };
  });
}
