/**
 * From the store to the VIPs an agent programs (pure): every task row's VIP declarations, each
 * validated again (a row comes from the network: a declaration another version or a forged
 * row carries is reported and left out, never breaking the other VIPs), grouped into services
 * with their backends (the declaring tasks' container addresses and backend ports, on any agent
 * that membership does not declare failed), named VIPs at the addresses the masters gave them.
 */
import { cidrContains, parseAddress, type Cidr } from '../common/index.js';
import type { VipAddress } from '../ipam/index.js';
import type { AgentTasks } from '../keyspace/index.js';
import { parseVipDeclaration, type VipDeclaration } from './declaration.js';
import { VipError, VipErrorCode } from './errors.js';
import type { VipBackend, VipService } from './ruleset.js';

/** A backend with where it comes from (for operators; the rules use ip and port only). */
export interface VipBackendInfo extends VipBackend {
  agent: string;
  framework: string;
  task: string;
}

export interface VipEntry extends VipService {
  /** `<name>.<framework>` of a named VIP (absent for an address VIP). */
  name?: string;
  backends: VipBackendInfo[];
}

/** A declaration left out, and why. */
export interface VipProblem {
  code: string;
  agent: string;
  framework: string;
  task: string;
  value: string;
  message: string;
}

export interface VipCatalog {
  /** Services to program, sorted by address, protocol and port. */
  services: VipEntry[];
  /** Named VIPs declared by some task (on any agent, failed ones too): what the allocator keeps. */
  declared: string[];
  /** Declared named VIPs the masters have not given an address yet. */
  pending: string[];
  problems: VipProblem[];
}

export interface BuildVipsOptions {
  /** Whether an agent's backends are left out (membership declares it failed). */
  down?: (agent: string) => boolean;
  /** The overlay's container subnets: no address VIP may lie inside them. */
  overlaySubnets: readonly string[];
  /** The named VIPs' ranges: no address VIP may lie inside them either. */
  vipRanges: readonly Cidr[];
}

/** The key of a named VIP: `<name>.<framework>` (the DNS name's first two labels). */
export const namedVipKey = (name: string, framework: string): string => `${name}.${framework}`;

const byKey = (a: VipEntry, b: VipEntry): number => {
  const ka = `${a.address}/${a.protocol}/${a.port}`;
  const kb = `${b.address}/${b.protocol}/${b.port}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/**
 * One declaration parsed and checked against the cluster's ranges: an address VIP may lie
 * neither in an overlay subnet (it would shadow a container) nor in the named VIPs' range (the
 * masters may give that address to a name). Throws VipError.
 */
export function validateVipDeclaration(text: string, ranges: Pick<BuildVipsOptions, 'overlaySubnets' | 'vipRanges'>): VipDeclaration {
  const d = parseVipDeclaration(text, ranges.overlaySubnets);
  if (d.kind === 'address') {
    const parsed = parseAddress(d.address as string);
    if (ranges.vipRanges.some((r) => parsed !== undefined && cidrContains(r, parsed.family, parsed.value)))
      throw new VipError(VipErrorCode.InVipRange, `VIP ${JSON.stringify(text)}: address ${d.address} lies inside the named VIPs' range; an address VIP must be outside it`, {
        value: text,
      });
  }
  return d;
}

export function buildVips(rows: ReadonlyMap<string, AgentTasks>, addresses: ReadonlyMap<string, VipAddress>, options: BuildVipsOptions): VipCatalog {
  const services = new Map<string, VipEntry>();
  const declared = new Set<string>();
  const pending = new Set<string>();
  const problems: VipProblem[] = [];
  const service = (address: string, d: VipDeclaration, name: string | undefined): VipEntry => {
    const id = `${address}/${d.protocol}/${d.port}`;
    let entry = services.get(id);
    if (entry === undefined) {
      entry = { address, port: d.port, protocol: d.protocol, backends: [], ...(name === undefined ? {} : { name }) };
      services.set(id, entry);
    }
    return entry;
  };
  for (const [agent, row] of rows) {
    const down = options.down?.(agent) ?? false;
    for (const task of row.tasks) {
      for (const text of task.vips ?? []) {
        let d: VipDeclaration;
        try {
          d = validateVipDeclaration(text, options);
        } catch (err) {
          if (!(err instanceof VipError)) throw err;
          problems.push({ code: err.code, agent, framework: task.framework, task: task.task, value: text, message: err.message });
          continue;
        }
        const targets: string[] = [];
        let name: string | undefined;
        if (d.kind === 'named') {
          name = namedVipKey(d.name as string, task.framework);
          declared.add(name);
          const address = addresses.get(name);
          if (address === undefined) {
            pending.add(name);
            continue;
          }
          // Both addresses always: the DNS name answers AAAA with the IPv6 one, and a client that
          // tries it when no task has an IPv6 address is refused at once (the VIP without
          // backends rejects) rather than left to time out on the default route.
          targets.push(address.ip);
          if (address.ip6 !== undefined) targets.push(address.ip6);
        } else targets.push(d.address as string);
        for (const address of targets) {
          const entry = service(address, d, name);
          if (down) continue;
          for (const ip of task.ips) {
            if (ip.includes(':') !== address.includes(':')) continue;
            entry.backends.push({ ip, port: d.backendPort, agent, framework: task.framework, task: task.task });
          }
        }
      }
    }
  }
  const order = (b: VipBackendInfo): string => `${b.ip}/${b.port}/${b.agent}`;
  for (const s of services.values()) s.backends.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  return { services: [...services.values()].sort(byKey), declared: [...declared].sort(), pending: [...pending].sort(), problems };
}

/** The named VIPs some task declares (valid declarations only), as name and framework: what `l4lb` DNS names stand for. */
export function declaredNamedVips(rows: ReadonlyMap<string, AgentTasks>): { key: string; name: string; framework: string }[] {
  const out = new Map<string, { key: string; name: string; framework: string }>();
  for (const row of rows.values()) {
    for (const task of row.tasks) {
      for (const text of task.vips ?? []) {
        if (!text.startsWith('/')) continue;
        let d: VipDeclaration;
        try {
          d = parseVipDeclaration(text);
        } catch {
          continue;
        }
        const key = namedVipKey(d.name as string, task.framework);
        out.set(key, { key, name: d.name as string, framework: task.framework });
      }
    }
  }
  return [...out.values()];
}
