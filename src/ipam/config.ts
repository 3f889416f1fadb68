/**
 * The overlay configuration (DC/OS-compatible defaults) and its validation. Every error names
 * the field (as a JSON path), the bad value and what would be valid.
 */
import { cidrsOverlap, formatCidr, parseCidr, type Cidr } from '../common/index.js';
import { IpamError, IpamErrorCode } from './errors.js';

export interface OverlayNetworkConfig {
  /** Network name: 1 to 13 characters (bridges are m-<name> and d-<name>, at most 15). */
  name: string;
  /** IPv4 range sliced into per-agent blocks, e.g. 9.0.0.0/8. */
  subnet?: string;
  /** IPv4 per-agent block prefix, e.g. 24. */
  prefix?: number;
  /** IPv6 range sliced into per-agent blocks, e.g. fd01:b::/64. */
  subnet6?: string;
  /** IPv6 per-agent block prefix, e.g. 80. */
  prefix6?: number;
  /** Disabled networks keep their allocations but get no new ones. Default true. */
  enabled?: boolean;
  /**
   * Isolation: the other overlay networks whose containers may open connections to this
   * network's containers (by name). Default none: every network is isolated from every other.
   * Containers of one network always reach each other, on one agent and across agents.
   */
  allowFrom?: string[];
  /**
   * Whether hosts (agents' and masters' own addresses, and anything else outside the overlay
   * networks) may open connections to this network's containers. Default true: health checks
   * and load balancers on the agents keep working; false leaves the containers reachable from
   * their own network and `allowFrom` only.
   */
  allowHosts?: boolean;
  /**
   * Whether this network's containers may open connections outside the overlay (through the
   * masquerade). Default true.
   */
  allowOutbound?: boolean;
}

export interface OverlayConfig {
  /** IPv4 range of VTEP addresses, one per agent. DC/OS: 44.128.0.0/20. */
  vtepSubnet: string;
  /** IPv6 range of VTEP addresses. DC/OS: fd01:a::/64. */
  vtepSubnet6?: string;
  /** VTEP MACs are this OUI plus the low 24 bits of the VTEP IPv4 address. DC/OS: 70:b3:d5:00:00:00. */
  vtepMacOui: string;
  /** VXLAN device name. Default vtep1024. */
  vtepName: string;
  /** VXLAN network identifier. Default 1024. */
  vni: number;
  /** VXLAN UDP port. Default 64000. */
  vxlanPort: number;
  /** MTU of the VTEP and bridges: the underlay MTU minus 50 bytes of VXLAN headers. Default 1420. */
  mtu: number;
  networks: OverlayNetworkConfig[];
  /**
   * IPv4 range of named VIPs' addresses (issue 21): each `/<name>:<port>` a task declares gets one
   * address from it, allocated by the masters (never two names on one address). Default
   * 11.0.0.0/8, DC/OS's l4lb range. Must not overlap the overlay's other ranges.
   */
  vipSubnet?: string;
  /** IPv6 range of named VIPs' addresses (the same index as the IPv4 one). Default fd01:c::/64. */
  vipSubnet6?: string;
}

/** The VIP ranges used when the configuration names none. */
export const DEFAULT_VIP_SUBNET = '11.0.0.0/8';
export const DEFAULT_VIP_SUBNET6 = 'fd01:c::/64';

export const DEFAULT_OVERLAY_CONFIG: Readonly<OverlayConfig> = {
  vtepSubnet: '44.128.0.0/20',
  vtepSubnet6: 'fd01:a::/64',
  vtepMacOui: '70:b3:d5:00:00:00',
  vtepName: 'vtep1024',
  vni: 1024,
  vxlanPort: 64000,
  mtu: 1420,
  networks: [
    { name: 'dcos', subnet: '9.0.0.0/8', prefix: 24 },
    { name: 'dcos6', subnet6: 'fd01:b::/64', prefix6: 80 },
  ],
};

const RESERVED_NAMES = ['host', 'bridge', 'default', 'none'];
export const MAX_NETWORK_NAME_LENGTH = 13;

/** A validated network, ranges parsed. */
export interface NetworkSpec {
  readonly name: string;
  readonly subnet: Cidr | undefined;
  readonly prefix: number;
  readonly subnet6: Cidr | undefined;
  readonly prefix6: number;
  readonly enabled: boolean;
}

export interface OverlaySpec {
  readonly config: OverlayConfig;
  readonly vtep: Cidr;
  readonly vtep6: Cidr | undefined;
  readonly oui: number[];
  readonly networks: NetworkSpec[];
  /** Named VIPs' ranges (the defaults when the configuration names none). */
  readonly vip: Cidr;
  readonly vip6: Cidr;
}

function invalid(path: string, value: unknown, expected: string): never {
  throw new IpamError(IpamErrorCode.InvalidConfig, `${path} = ${JSON.stringify(value)} is not valid; expected ${expected}`, { path, value });
}

function integer(path: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) invalid(path, value, `an integer from ${min} to ${max}`);
  return value;
}

export function validateNetworkName(name: unknown, path = 'name'): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.length > MAX_NETWORK_NAME_LENGTH) {
    invalid(path, name, `1 to ${MAX_NETWORK_NAME_LENGTH} letters, digits, '.', '_' or '-', starting with a letter or digit (bridges m-<name> and d-<name> must fit Linux's 15 characters)`);
  }
  if (RESERVED_NAMES.includes(name.toLowerCase())) invalid(path, name, `a name other than ${RESERVED_NAMES.join(', ')} (reserved by container runtimes)`);
  return name;
}

function cidr(path: string, value: unknown, family: 4 | 6): Cidr {
  const parsed = typeof value === 'string' ? parseCidr(value) : undefined;
  if (parsed === undefined || parsed.family !== family) invalid(path, value, `an IPv${family} network in CIDR form with zero host bits (e.g. ${family === 4 ? '9.0.0.0/8' : 'fd01:b::/64'})`);
  return parsed;
}

/** Validates an overlay config and parses its ranges. */
export function validateOverlayConfig(config: OverlayConfig, base = 'overlay'): OverlaySpec {
  if (config === null || typeof config !== 'object') invalid(base, config, 'an object');
  const vtep = cidr(`${base}.vtepSubnet`, config.vtepSubnet, 4);
  if (vtep.prefix > 30) invalid(`${base}.vtepSubnet`, config.vtepSubnet, 'a prefix of at most /30 (room for VTEP addresses)');
  const vtep6 = config.vtepSubnet6 === undefined ? undefined : cidr(`${base}.vtepSubnet6`, config.vtepSubnet6, 6);
  if (vtep6 !== undefined && vtep6.prefix > 126) invalid(`${base}.vtepSubnet6`, config.vtepSubnet6, 'a prefix of at most /126');
  const ouiMatch = typeof config.vtepMacOui === 'string' ? /^([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):00:00:00$/.exec(config.vtepMacOui) : null;
  if (ouiMatch === null) invalid(`${base}.vtepMacOui`, config.vtepMacOui, 'a MAC "xx:xx:xx:00:00:00" (the low 3 bytes come from the VTEP address)');
  const oui = [1, 2, 3].map((i) => parseInt(ouiMatch[i] as string, 16));
  if (((oui[0] as number) & 1) !== 0) invalid(`${base}.vtepMacOui`, config.vtepMacOui, 'a unicast OUI (even first byte)');
  if (typeof config.vtepName !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$/.test(config.vtepName)) {
    invalid(`${base}.vtepName`, config.vtepName, 'an interface name of 1 to 15 letters, digits, ".", "_" or "-"');
  }
  integer(`${base}.vni`, config.vni, 1, 16_777_215);
  integer(`${base}.vxlanPort`, config.vxlanPort, 1, 65_535);
  integer(`${base}.mtu`, config.mtu, 1280, 9000);
  if (!Array.isArray(config.networks) || config.networks.length === 0) invalid(`${base}.networks`, config.networks, 'at least one network');
  const networks: NetworkSpec[] = [];
  const ranges: { path: string; range: Cidr }[] = [{ path: `${base}.vtepSubnet`, range: vtep }];
  if (vtep6 !== undefined) ranges.push({ path: `${base}.vtepSubnet6`, range: vtep6 });
  config.networks.forEach((n, i) => {
    const path = `${base}.networks[${i}]`;
    if (n === null || typeof n !== 'object') invalid(path, n, 'an object');
    const name = validateNetworkName(n.name, `${path}.name`);
    if (networks.some((o) => o.name === name)) invalid(`${path}.name`, name, 'a name no other network uses');
    if (n.subnet === undefined && n.subnet6 === undefined) invalid(path, n, 'at least one of subnet (IPv4) and subnet6 (IPv6)');
    let subnet: Cidr | undefined;
    let prefix = 0;
    if (n.subnet !== undefined) {
      subnet = cidr(`${path}.subnet`, n.subnet, 4);
      // Each half needs a gateway, a container and a broadcast address at least.
      prefix = integer(`${path}.prefix`, n.prefix, subnet.prefix + 1, 29);
      ranges.push({ path: `${path}.subnet`, range: subnet });
    }
    let subnet6: Cidr | undefined;
    let prefix6 = 0;
    if (n.subnet6 !== undefined) {
      subnet6 = cidr(`${path}.subnet6`, n.subnet6, 6);
      prefix6 = integer(`${path}.prefix6`, n.prefix6, subnet6.prefix + 1, 126);
      ranges.push({ path: `${path}.subnet6`, range: subnet6 });
    }
    if (n.enabled !== undefined && typeof n.enabled !== 'boolean') invalid(`${path}.enabled`, n.enabled, 'true or false');
    for (const flag of ['allowHosts', 'allowOutbound'] as const) if (n[flag] !== undefined && typeof n[flag] !== 'boolean') invalid(`${path}.${flag}`, n[flag], 'true or false');
    if (n.allowFrom !== undefined && !Array.isArray(n.allowFrom)) invalid(`${path}.allowFrom`, n.allowFrom, "a list of other overlay networks' names");
    networks.push({ name, subnet, prefix, subnet6, prefix6, enabled: n.enabled ?? true });
  });
  // allowFrom names other networks of this configuration (checked once every name is known).
  const names = networks.map((n) => n.name);
  config.networks.forEach((n, i) => {
    const seen = new Set<string>();
    (n.allowFrom ?? []).forEach((from, j) => {
      const at = `${base}.networks[${i}].allowFrom[${j}]`;
      if (typeof from !== 'string' || !names.includes(from)) invalid(at, from, `the name of another overlay network (${names.filter((x) => x !== n.name).join(', ') || 'there is none'})`);
      if (from === n.name) invalid(at, from, `another network's name: containers of ${n.name} always reach each other`);
      if (seen.has(from)) invalid(at, from, 'a name not listed twice');
      seen.add(from);
    });
  });
  const vip = cidr(`${base}.vipSubnet`, config.vipSubnet ?? DEFAULT_VIP_SUBNET, 4);
  if (vip.prefix > 30) invalid(`${base}.vipSubnet`, config.vipSubnet, 'a prefix of at most /30 (room for VIP addresses)');
  const vip6 = cidr(`${base}.vipSubnet6`, config.vipSubnet6 ?? DEFAULT_VIP_SUBNET6, 6);
  if (vip6.prefix > 126) invalid(`${base}.vipSubnet6`, config.vipSubnet6, 'a prefix of at most /126');
  ranges.push({ path: `${base}.vipSubnet`, range: vip }, { path: `${base}.vipSubnet6`, range: vip6 });
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i] as { path: string; range: Cidr };
      const b = ranges[j] as { path: string; range: Cidr };
      if (cidrsOverlap(a.range, b.range)) {
        // The value goes into the details: the config check prints `path = value`, and without it
        // an overlap was reported as "= (missing)" although the value was there.
        throw new IpamError(IpamErrorCode.InvalidConfig, `${b.path} (${formatCidr(b.range)}) overlaps ${a.path} (${formatCidr(a.range)}); overlay ranges must not overlap`, {
          path: b.path,
          value: formatCidr(b.range),
          overlaps: a.path,
        });
      }
    }
  }
  return { config, vtep, vtep6, oui, networks, vip, vip6 };
}
