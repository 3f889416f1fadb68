/**
 * The names of the Virtual Network Service (pure): which addresses a name in the zone stands
 * for, from the task records agents publish.
 *
 *   <task>.<framework>.containerip.<zone>   the task's container addresses
 *   <task>.<framework>.autoip.<zone>        its container addresses when it has any, else its agent's
 *   <task>.<framework>.agentip.<zone>       the address of the agent it runs on
 *   <name>.<framework>.l4lb.<zone>          a named VIP's address (src/vips), while a task declares it
 *
 * Names are case-insensitive; a name several tasks share (the same task and framework on
 * several agents) answers with every address. Records of agents that membership declares failed
 * are withheld (the caller says which agents are down).
 */
import { isIp } from '../common/index.js';

/** One task as an agent publishes it. */
export interface TaskRecord {
  framework: string;
  task: string;
  /** Container addresses (IPv4 and IPv6). */
  ips: string[];
  /** The agent's underlay address. */
  agentIp: string;
}

export type NameKind = 'containerip' | 'autoip' | 'agentip' | 'l4lb';
const KINDS: readonly NameKind[] = ['containerip', 'autoip', 'agentip', 'l4lb'];

/** A named VIP's addresses, for `l4lb` names. */
export interface VipRecord {
  name: string;
  framework: string;
  ip: string;
  ip6?: string;
}

/** A DNS label as used in names: lower case, letters, digits and '-' (other characters become '-'). */
export function dnsLabel(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
}

/** The parts of a query name in `zone`, or undefined when it is not a task name of the zone. */
export function parseTaskName(name: string, zone: string): { task: string; framework: string; kind: NameKind } | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  const z = zone.toLowerCase().replace(/\.$/, '');
  if (!n.endsWith(`.${z}`)) return undefined;
  const labels = n.slice(0, -(z.length + 1)).split('.');
  if (labels.length !== 3) return undefined;
  const [task, framework, kind] = labels as [string, string, string];
  if (!KINDS.includes(kind as NameKind) || task.length === 0 || framework.length === 0) return undefined;
  return { task, framework, kind: kind as NameKind };
}

/** Whether `name` is `zone` or below it. */
export function inZone(name: string, zone: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  const z = zone.toLowerCase().replace(/\.$/, '');
  return n === z || n.endsWith(`.${z}`);
}

export class TaskCatalog {
  /** `<task>.<framework>` -> records (with the agent that published each). */
  private byName = new Map<string, { agent: string; record: TaskRecord }[]>();
  /** `<name>.<framework>` -> a named VIP's addresses. */
  private vips = new Map<string, VipRecord>();
  private count = 0;
  /** Bumped by every replace: answers cached from an older catalog are stale. */
  generation = 0;

  /** Replaces every record: `records` by publishing agent. */
  replace(records: ReadonlyMap<string, readonly TaskRecord[]>): void {
    const next = new Map<string, { agent: string; record: TaskRecord }[]>();
    let count = 0;
    for (const [agent, list] of records) {
      for (const record of list) {
        const key = `${dnsLabel(record.task)}.${dnsLabel(record.framework)}`;
        const entries = next.get(key) ?? [];
        entries.push({ agent, record });
        next.set(key, entries);
        count++;
      }
    }
    this.byName = next;
    this.count = count;
    this.generation++;
  }

  get size(): number {
    return this.count;
  }

  /** Replaces the named VIPs (`l4lb` names). */
  replaceVips(records: readonly VipRecord[]): void {
    this.vips = new Map(records.map((r) => [`${dnsLabel(r.name)}.${dnsLabel(r.framework)}`, r]));
    this.generation++;
  }

  /** The named VIP a `l4lb` name stands for. */
  vip(name: string, framework: string): VipRecord | undefined {
    return this.vips.get(`${name}.${framework}`);
  }

  /** Whether a task of a live agent has this name (other record types then get NODATA, not NXDOMAIN). */
  exists(task: string, framework: string, down: (agent: string) => boolean, kind?: NameKind): boolean {
    if (kind === 'l4lb') return this.vips.has(`${task}.${framework}`);
    return (this.byName.get(`${task}.${framework}`) ?? []).some((e) => !down(e.agent));
  }

  /** Every record a task name stands for, with the agent that published it (down ones too). */
  sources(task: string, framework: string): { agent: string; record: TaskRecord }[] {
    return [...(this.byName.get(`${task}.${framework}`) ?? [])];
  }

  /**
   * The addresses of a task name of family `family`, sorted, without agents `down` says are
   * down; undefined when no task of a live agent has that name (NXDOMAIN), [] when one has but
   * no address of that family (NODATA).
   */
  resolve(task: string, framework: string, kind: NameKind, family: 4 | 6, down: (agent: string) => boolean): string[] | undefined {
    if (kind === 'l4lb') {
      const vip = this.vips.get(`${task}.${framework}`);
      if (vip === undefined) return undefined;
      const ip = family === 4 ? vip.ip : vip.ip6;
      return ip === undefined ? [] : [ip];
    }
    const entries = this.byName.get(`${task}.${framework}`)?.filter((e) => !down(e.agent));
    // Only withheld records (their agents are down): the name does not exist for now.
    if (entries === undefined || entries.length === 0) return undefined;
    const out = new Set<string>();
    for (const { record } of entries) {
      const containers = record.ips.filter((ip) => isIp(ip, family));
      const agentIps = isIp(record.agentIp, family) ? [record.agentIp] : [];
      const picked = kind === 'containerip' ? containers : kind === 'agentip' ? agentIps : record.ips.length > 0 ? containers : agentIps;
      for (const ip of picked) out.add(ip);
    }
    return [...out].sort();
  }
}
