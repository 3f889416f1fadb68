/**
 * Device specs and per-agent entries: what an agent must have in its kernel for the overlay,
 * as a dataplane desired state.
 *
 * Locally: the VTEP (VXLAN, learning off, the agent's underlay address as source, its derived
 * MAC) with the VTEP addresses, and per overlay network the bridges `m-<net>` and `d-<net>`
 * carrying the gateway of their half. For each remote agent R, per subnet of R:
 *
 *   route  <R.subnet> via <R.vtepIp> dev <vtep> onlink      (IPv6 subnets via R.vtepIp6)
 *   neigh  <R.vtepIp> lladdr <R.vtepMac> dev <vtep> permanent (and R.vtepIp6)
 *   fdb    <R.vtepMac> dev <vtep> dst <R.underlayIp> self permanent
 *
 * Pure: no I/O.
 */
import { parseCidr, parseIp, formatCidr, canonicalIp, canonicalMac } from '../common/index.js';
import type { DesiredAddress, DesiredLink, DesiredState } from '../dataplane/index.js';
import { invalidSpec } from './errors.js';
import { parseOui, vtepMac, bridgeMac } from './mac.js';
import { bridgeNames, validateVtepName } from './names.js';

export interface VtepConfig {
  /** VXLAN device name. DC/OS: vtep1024. */
  name: string;
  /** VXLAN network identifier, 1 to 16,777,215. DC/OS: 1024. */
  vni: number;
  /** UDP port of the VXLAN tunnel. DC/OS: 64000. */
  port: number;
  /** MTU of the VTEP and bridges. DC/OS: 1420 (a 1,500-byte underlay less 50 bytes of VXLAN headers, rounded down). */
  mtu: number;
  /** OUI of VTEP MACs. DC/OS: 70:b3:d5:00:00:00. */
  oui: string;
}

export const DEFAULT_VTEP_CONFIG: Readonly<VtepConfig> = { name: 'vtep1024', vni: 1024, port: 64000, mtu: 1420, oui: '70:b3:d5:00:00:00' };

/** One overlay network's share on the local agent: each half as a CIDR with its gateway. */
export interface LocalNetwork {
  name: string;
  mesos?: string;
  mesosGateway?: string;
  docker?: string;
  dockerGateway?: string;
  mesos6?: string;
  mesosGateway6?: string;
  docker6?: string;
  dockerGateway6?: string;
}

export interface LocalAgent {
  /** The agent's underlay address: the VXLAN source and what peers send to. */
  underlayIp: string;
  /** The agent's VTEP address with the VTEP subnet's prefix, e.g. "44.128.0.1/20". */
  vtepAddress: string;
  /** IPv6 VTEP address with prefix, e.g. "fd01:a::1/64". */
  vtepAddress6?: string;
  networks: LocalNetwork[];
}

export interface RemoteAgent {
  underlayIp: string;
  vtepIp: string;
  vtepIp6?: string;
  vtepMac: string;
  /** The agent's blocks in every overlay network, IPv4 and IPv6 (e.g. "9.0.2.0/24"). */
  subnets: string[];
}

function validateConfig(config: VtepConfig): void {
  validateVtepName(config.name, 'vtep.name');
  const int = (path: string, value: unknown, min: number, max: number): void => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) invalidSpec(path, value, `an integer from ${min} to ${max}`);
  };
  int('vtep.vni', config.vni, 1, 16_777_215);
  int('vtep.port', config.port, 1, 65_535);
  int('vtep.mtu', config.mtu, 1280, 9000);
  parseOui(config.oui, 'vtep.oui');
}

function hostAddress(path: string, text: unknown, family: 4 | 6): { address: string; prefixLen: number } {
  const slash = typeof text === 'string' ? text.indexOf('/') : -1;
  const ip = slash > 0 ? parseIp((text as string).slice(0, slash)) : undefined;
  const cidr = typeof text === 'string' ? parseCidr(text, false) : undefined;
  if (ip === undefined || cidr === undefined || ip.family !== family)
    invalidSpec(path, text, `an IPv${family} address with its prefix length, e.g. ${family === 4 ? '44.128.0.1/20' : 'fd01:a::1/64'}`);
  return { address: canonicalIp((text as string).slice(0, slash)) as string, prefixLen: cidr.prefix };
}

function gatewayAddress(path: string, half: string | undefined, gateway: string | undefined, family: 4 | 6): { address: string; prefixLen: number } | undefined {
  if (half === undefined && gateway === undefined) return undefined;
  const cidr = typeof half === 'string' ? parseCidr(half) : undefined;
  if (cidr === undefined || cidr.family !== family) invalidSpec(path, half, `an IPv${family} network in CIDR form`);
  const gw = typeof gateway === 'string' ? parseIp(gateway) : undefined;
  if (gw === undefined || gw.family !== family) invalidSpec(`${path}Gateway`, gateway, `an IPv${family} address inside ${formatCidr(cidr)}`);
  return { address: canonicalIp(gateway as string) as string, prefixLen: cidr.prefix };
}

/** The local devices and addresses: the VTEP and each network's bridges. */
export function localState(config: VtepConfig, local: LocalAgent): DesiredState {
  validateConfig(config);
  const underlay = typeof local.underlayIp === 'string' ? canonicalIp(local.underlayIp) : undefined;
  if (underlay === undefined) invalidSpec('local.underlayIp', local.underlayIp, 'an IPv4 or IPv6 address');
  const vtep = hostAddress('local.vtepAddress', local.vtepAddress, 4);
  const links: DesiredLink[] = [
    {
      name: config.name,
      kind: 'vxlan',
      mtu: config.mtu,
      mac: vtepMac(vtep.address, config.oui),
      vxlan: { vni: config.vni, port: config.port, localIp: underlay, learning: false },
    },
  ];
  const addresses: DesiredAddress[] = [{ dev: config.name, ...vtep }];
  if (local.vtepAddress6 !== undefined) addresses.push({ dev: config.name, ...hostAddress('local.vtepAddress6', local.vtepAddress6, 6) });
  (local.networks ?? []).forEach((net, i) => {
    const names = bridgeNames(net.name);
    const path = `local.networks[${i}]`;
    const halves: [string, string | undefined, string | undefined, 4 | 6][] = [
      [names.mesos, net.mesos, net.mesosGateway, 4],
      [names.docker, net.docker, net.dockerGateway, 4],
      [names.mesos, net.mesos6, net.mesosGateway6, 6],
      [names.docker, net.docker6, net.dockerGateway6, 6],
    ];
    for (const name of [names.mesos, names.docker]) links.push({ name, kind: 'bridge', mtu: config.mtu, mac: bridgeMac(name) });
    for (const [dev, half, gateway, family] of halves) {
      const field = `${path}.${dev === names.mesos ? 'mesos' : 'docker'}${family === 6 ? '6' : ''}`;
      const gw = gatewayAddress(field, half, gateway, family);
      if (gw !== undefined) addresses.push({ dev, ...gw });
    }
  });
  return { links, addresses, routes: [], neighbours: [], fdb: [], rules: [] };
}

/** The route, neighbour and FDB entries that reach one remote agent through the local VTEP. */
export function remoteState(config: Pick<VtepConfig, 'name'>, remote: RemoteAgent): DesiredState {
  const dev = validateVtepName(config.name, 'vtep.name');
  const underlay = typeof remote.underlayIp === 'string' ? canonicalIp(remote.underlayIp) : undefined;
  if (underlay === undefined) invalidSpec('remote.underlayIp', remote.underlayIp, 'an IPv4 or IPv6 address');
  const vtep4 = typeof remote.vtepIp === 'string' ? parseIp(remote.vtepIp) : undefined;
  if (vtep4 === undefined || vtep4.family !== 4) invalidSpec('remote.vtepIp', remote.vtepIp, 'an IPv4 address');
  const vtep6 = remote.vtepIp6 === undefined ? undefined : parseIp(remote.vtepIp6);
  if (remote.vtepIp6 !== undefined && (vtep6 === undefined || vtep6.family !== 6)) invalidSpec('remote.vtepIp6', remote.vtepIp6, 'an IPv6 address');
  const mac = typeof remote.vtepMac === 'string' ? canonicalMac(remote.vtepMac) : undefined;
  if (mac === undefined) invalidSpec('remote.vtepMac', remote.vtepMac, 'a MAC address "xx:xx:xx:xx:xx:xx"');
  const gw4 = canonicalIp(remote.vtepIp) as string;
  const gw6 = remote.vtepIp6 === undefined ? undefined : (canonicalIp(remote.vtepIp6) as string);
  const state: DesiredState = { links: [], addresses: [], routes: [], neighbours: [{ dev, ip: gw4, mac }], fdb: [{ dev, mac, dst: underlay }], rules: [] };
  if (gw6 !== undefined) state.neighbours.push({ dev, ip: gw6, mac });
  (remote.subnets ?? []).forEach((subnet, i) => {
    const cidr = typeof subnet === 'string' ? parseCidr(subnet) : undefined;
    if (cidr === undefined) invalidSpec(`remote.subnets[${i}]`, subnet, 'a network in CIDR form with zero host bits');
    if (cidr.family === 6 && gw6 === undefined) invalidSpec(`remote.subnets[${i}]`, subnet, 'an IPv4 subnet, or a vtepIp6 for IPv6 subnets');
    const [dst] = formatCidr(cidr).split('/') as [string];
    state.routes.push({ dst, prefixLen: cidr.prefix, gateway: cidr.family === 4 ? gw4 : (gw6 as string), dev, onlink: true });
  });
  return state;
}
