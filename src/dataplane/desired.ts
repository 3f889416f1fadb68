/**
 * Validation and normalization of the desired state, and the keys that identify each entry.
 *
 * A key names the kernel slot an entry occupies, the same way the kernel does: a route is
 * identified by table, destination and metric (not by its gateway: a different gateway is the
 * same route changed); a neighbour by device and address; an FDB entry by device and MAC; a rule
 * by all its selectors. Keys use device names, not interface indexes, so a desired entry has
 * its key before its device exists.
 *
 * Pure: no I/O.
 */
import { canonicalIp, canonicalMac, isValidInterfaceName, parseCidr, parseIp, formatCidr, type IpFamily } from '../common/index.js';
import { DataplaneError, DataplaneErrorCode } from './errors.js';
import { MAIN_TABLE, type DesiredAddress, type DesiredFdb, type DesiredLink, type DesiredNeighbour, type DesiredRoute, type DesiredRule, type DesiredState } from './types.js';

export interface NormRoute {
  readonly kind: 'route';
  readonly key: string;
  readonly family: IpFamily;
  readonly table: number;
  readonly dst: string;
  readonly prefixLen: number;
  readonly metric: number;
  readonly gateway: string;
  readonly dev: string;
  readonly onlink: boolean;
}

export interface NormNeighbour {
  readonly kind: 'neigh';
  readonly key: string;
  readonly family: IpFamily;
  readonly dev: string;
  readonly ip: string;
  readonly mac: string;
}

export interface NormFdb {
  readonly kind: 'fdb';
  readonly key: string;
  readonly dev: string;
  readonly mac: string;
  readonly dst: string;
}

export interface NormRule {
  readonly kind: 'rule';
  readonly key: string;
  readonly family: IpFamily;
  readonly priority: number;
  readonly table: number;
  readonly src: string | undefined;
  readonly srcLen: number;
  readonly dst: string | undefined;
  readonly dstLen: number;
  readonly fwmark: number | undefined;
}

export type NormEntry = NormRoute | NormNeighbour | NormFdb | NormRule;

export interface NormLink {
  readonly name: string;
  readonly kind: 'vxlan' | 'bridge';
  readonly mtu: number;
  readonly mac: string | undefined;
  readonly vxlan: { vni: number; port: number; localIp: string; learning: boolean } | undefined;
}

export interface NormAddress {
  readonly key: string;
  readonly dev: string;
  readonly family: IpFamily;
  readonly address: string;
  readonly prefixLen: number;
}

/** A validated, canonical desired state (or one group of it). */
export interface NormState {
  readonly links: NormLink[];
  readonly addresses: NormAddress[];
  readonly entries: NormEntry[];
}

export const routeKey = (table: number, dst: string, prefixLen: number, metric: number): string => `r|${table}|${dst}/${prefixLen}|${metric}`;
export const neighbourKey = (dev: string, ip: string): string => `n|${dev}|${ip}`;
export const fdbKey = (dev: string, mac: string): string => `f|${dev}|${mac}`;
export const addressKey = (dev: string, address: string, prefixLen: number): string => `${dev}|${address}/${prefixLen}`;
export function ruleKey(r: {
  family: number;
  priority: number;
  table: number;
  src?: string | undefined;
  srcLen: number;
  dst?: string | undefined;
  dstLen: number;
  fwmark?: number | undefined;
}): string {
  return `u|${r.family}|${r.priority}|${r.table}|${r.src ?? ''}/${r.srcLen}|${r.dst ?? ''}/${r.dstLen}|${r.fwmark ?? ''}`;
}

/** The kernel's default metric when a route names none: 0 for IPv4, 1024 for IPv6. */
export const defaultMetric = (family: IpFamily): number => (family === 4 ? 0 : 1024);

function invalid(path: string, value: unknown, expected: string): never {
  throw new DataplaneError(DataplaneErrorCode.InvalidDesired, `${path} = ${JSON.stringify(value)} is not valid; expected ${expected}`, { path, value });
}

function ip(path: string, value: unknown, family?: IpFamily): { text: string; family: IpFamily } {
  const parsed = typeof value === 'string' ? parseIp(value) : undefined;
  if (parsed === undefined || (family !== undefined && parsed.family !== family)) invalid(path, value, family === undefined ? 'an IPv4 or IPv6 address' : `an IPv${family} address`);
  return { text: canonicalIp(value as string) as string, family: parsed.family };
}

function mac(path: string, value: unknown): string {
  const text = typeof value === 'string' ? canonicalMac(value) : undefined;
  if (text === undefined) invalid(path, value, 'a MAC address "xx:xx:xx:xx:xx:xx"');
  return text;
}

function dev(path: string, value: unknown): string {
  if (!isValidInterfaceName(value)) invalid(path, value, "an interface name of 1 to 15 letters, digits, '.', '_' or '-'");
  return value;
}

function int(path: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) invalid(path, value, `an integer from ${min} to ${max}`);
  return value;
}

function network(path: string, address: unknown, prefixLen: unknown): { dst: string; prefixLen: number; family: IpFamily } {
  const parsed = ip(path, address);
  const len = int(`${path}.prefixLen`, prefixLen, 0, parsed.family === 4 ? 32 : 128);
  const cidr = parseCidr(`${parsed.text}/${len}`);
  if (cidr === undefined) invalid(path, `${String(address)}/${len}`, 'a network address with zero host bits');
  return { dst: formatCidr(cidr).split('/')[0] as string, prefixLen: len, family: parsed.family };
}

export function normalizeLink(link: DesiredLink, path: string): NormLink {
  if (link === null || typeof link !== 'object') invalid(path, link, 'an object');
  const name = dev(`${path}.name`, link.name);
  if (link.kind !== 'vxlan' && link.kind !== 'bridge') invalid(`${path}.kind`, link.kind, '"vxlan" or "bridge"');
  const mtu = int(`${path}.mtu`, link.mtu, 68, 65_535);
  const linkMac = link.mac === undefined ? undefined : mac(`${path}.mac`, link.mac);
  let vxlan: NormLink['vxlan'];
  if (link.kind === 'vxlan') {
    const v = link.vxlan;
    if (v === undefined || v === null || typeof v !== 'object') invalid(`${path}.vxlan`, v, 'VXLAN attributes { vni, port, localIp, learning }');
    vxlan = {
      vni: int(`${path}.vxlan.vni`, v.vni, 1, 16_777_215),
      port: int(`${path}.vxlan.port`, v.port, 1, 65_535),
      localIp: ip(`${path}.vxlan.localIp`, v.localIp).text,
      learning: v.learning === true,
    };
  } else if (link.vxlan !== undefined) {
    invalid(`${path}.vxlan`, link.vxlan, 'no VXLAN attributes on a bridge');
  }
  return { name, kind: link.kind, mtu, mac: linkMac, vxlan };
}

export function normalizeAddress(a: DesiredAddress, path: string): NormAddress {
  if (a === null || typeof a !== 'object') invalid(path, a, 'an object');
  const name = dev(`${path}.dev`, a.dev);
  const parsed = ip(`${path}.address`, a.address);
  const prefixLen = int(`${path}.prefixLen`, a.prefixLen, 1, parsed.family === 4 ? 32 : 128);
  return { key: addressKey(name, parsed.text, prefixLen), dev: name, family: parsed.family, address: parsed.text, prefixLen };
}

export function normalizeRoute(r: DesiredRoute, path: string): NormRoute {
  if (r === null || typeof r !== 'object') invalid(path, r, 'an object');
  const net = network(`${path}.dst`, r.dst, r.prefixLen);
  const gateway = ip(`${path}.gateway`, r.gateway, net.family).text;
  const table = r.table === undefined ? MAIN_TABLE : int(`${path}.table`, r.table, 1, 0xfffffffe);
  const metric = r.metric === undefined ? defaultMetric(net.family) : int(`${path}.metric`, r.metric, 0, 0xffffffff);
  return {
    kind: 'route',
    key: routeKey(table, net.dst, net.prefixLen, metric),
    family: net.family,
    table,
    dst: net.dst,
    prefixLen: net.prefixLen,
    metric,
    gateway,
    dev: dev(`${path}.dev`, r.dev),
    onlink: r.onlink === true,
  };
}

export function normalizeNeighbour(n: DesiredNeighbour, path: string): NormNeighbour {
  if (n === null || typeof n !== 'object') invalid(path, n, 'an object');
  const name = dev(`${path}.dev`, n.dev);
  const address = ip(`${path}.ip`, n.ip);
  return { kind: 'neigh', key: neighbourKey(name, address.text), family: address.family, dev: name, ip: address.text, mac: mac(`${path}.mac`, n.mac) };
}

export function normalizeFdb(f: DesiredFdb, path: string): NormFdb {
  if (f === null || typeof f !== 'object') invalid(path, f, 'an object');
  const name = dev(`${path}.dev`, f.dev);
  const linkMac = mac(`${path}.mac`, f.mac);
  return { kind: 'fdb', key: fdbKey(name, linkMac), dev: name, mac: linkMac, dst: ip(`${path}.dst`, f.dst).text };
}

export function normalizeRule(r: DesiredRule, path: string): NormRule {
  if (r === null || typeof r !== 'object') invalid(path, r, 'an object');
  if (r.family !== 4 && r.family !== 6) invalid(`${path}.family`, r.family, '4 or 6');
  const bits = r.family === 4 ? 32 : 128;
  const side = (which: 'src' | 'dst'): { addr: string | undefined; len: number } => {
    const value = r[which];
    if (value === undefined) return { addr: undefined, len: 0 };
    const net = network(`${path}.${which}`, value, (which === 'src' ? r.srcLen : r.dstLen) ?? bits);
    if (net.family !== r.family) invalid(`${path}.${which}`, value, `an IPv${r.family} address (the rule's family)`);
    return { addr: net.dst, len: net.prefixLen };
  };
  const src = side('src');
  const dst = side('dst');
  const fwmark = r.fwmark === undefined ? undefined : int(`${path}.fwmark`, r.fwmark, 0, 0xffffffff);
  const rule = {
    family: r.family,
    priority: int(`${path}.priority`, r.priority, 1, 32_765),
    table: int(`${path}.table`, r.table, 1, 0xfffffffe),
    src: src.addr,
    srcLen: src.len,
    dst: dst.addr,
    dstLen: dst.len,
    fwmark,
  };
  return { kind: 'rule', key: ruleKey(rule), ...rule };
}

/** Validates a whole desired state (or a group); throws a DataplaneError naming the first bad field. */
export function normalizeState(state: Partial<DesiredState>, base = 'desired'): NormState {
  if (state === null || typeof state !== 'object') invalid(base, state, 'an object');
  const list = <T>(name: keyof DesiredState): T[] => {
    const value = state[name];
    if (value === undefined) return [];
    if (!Array.isArray(value)) invalid(`${base}.${name}`, value, 'an array');
    return value as T[];
  };
  const links = list<DesiredLink>('links').map((l, i) => normalizeLink(l, `${base}.links[${i}]`));
  const names = new Set<string>();
  links.forEach((l, i) => {
    if (names.has(l.name)) invalid(`${base}.links[${i}].name`, l.name, 'a name no other desired link uses');
    names.add(l.name);
  });
  const addresses = list<DesiredAddress>('addresses').map((a, i) => normalizeAddress(a, `${base}.addresses[${i}]`));
  const entries: NormEntry[] = [];
  list<DesiredRoute>('routes').forEach((r, i) => {
    entries.push(normalizeRoute(r, `${base}.routes[${i}]`));
  });
  list<DesiredNeighbour>('neighbours').forEach((n, i) => {
    entries.push(normalizeNeighbour(n, `${base}.neighbours[${i}]`));
  });
  list<DesiredFdb>('fdb').forEach((f, i) => {
    entries.push(normalizeFdb(f, `${base}.fdb[${i}]`));
  });
  list<DesiredRule>('rules').forEach((r, i) => {
    entries.push(normalizeRule(r, `${base}.rules[${i}]`));
  });
  return { links, addresses, entries };
}

/** Field-by-field equality of two normalized entries of the same key. */
export function sameEntry(a: NormEntry, b: NormEntry): boolean {
  if (a.kind !== b.kind || a.key !== b.key) return false;
  switch (a.kind) {
    case 'route': {
      const o = b as NormRoute;
      return a.gateway === o.gateway && a.dev === o.dev && a.onlink === o.onlink;
    }
    case 'neigh':
      return a.mac === (b as NormNeighbour).mac;
    case 'fdb':
      return a.dst === (b as NormFdb).dst;
    case 'rule':
      return true;
  }
}
