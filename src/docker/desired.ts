/**
 * The Docker networks an agent's lease calls for, and how an existing Docker network differs
 * from one. Pure.
 *
 * One Docker network per overlay network the lease covers, named like it (what `docker run
 * --network dcos` names), of the built-in `bridge` driver on the bridge `d-<network>` (the
 * dataplane makes that bridge with the Docker half's gateway; Docker adopts an existing bridge
 * whose address is the network's gateway), with the Docker half as its subnet so that Docker's
 * own address management hands out container addresses, Docker's masquerade off (lashup's own
 * applies to the whole overlay), and the overlay MTU.
 */
import { canonicalIp, formatCidr, parseCidr } from '../common/index.js';
import type { Lease } from '../ipam/index.js';
import { bridgeNames } from '../vxlan/index.js';
import type { DockerNetwork, DockerNetworkSpec } from './engine.js';

/** The label marking a Docker network as lashup's (a network without it is never touched). */
export const LASHUP_NETWORK_LABEL = 'io.lashup.network';

const BRIDGE_NAME = 'com.docker.network.bridge.name';
const MASQUERADE = 'com.docker.network.bridge.enable_ip_masquerade';
const MTU = 'com.docker.network.driver.mtu';

export interface DesiredDockerNetwork {
  /** The overlay network's name, also the Docker network's. */
  name: string;
  bridge: string;
  /** The Docker half and its gateway, per family present. */
  subnet?: string;
  gateway?: string;
  subnet6?: string;
  gateway6?: string;
  mtu: number;
}

/** The Docker networks for `lease` (networks without a Docker half are left out), by name. */
export function desiredDockerNetworks(lease: Lease, mtu: number): DesiredDockerNetwork[] {
  const out: DesiredDockerNetwork[] = [];
  for (const [name, n] of Object.entries(lease.networks).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const d: DesiredDockerNetwork = { name, bridge: bridgeNames(name).docker, mtu };
    if (n.docker !== undefined && n.dockerGateway !== undefined) {
      d.subnet = n.docker;
      d.gateway = n.dockerGateway;
    }
    if (n.docker6 !== undefined && n.dockerGateway6 !== undefined) {
      d.subnet6 = n.docker6;
      d.gateway6 = n.dockerGateway6;
    }
    if (d.subnet !== undefined || d.subnet6 !== undefined) out.push(d);
  }
  return out;
}

function ipamConfig(d: DesiredDockerNetwork): { Subnet: string; Gateway: string }[] {
  const config: { Subnet: string; Gateway: string }[] = [];
  if (d.subnet !== undefined && d.gateway !== undefined) config.push({ Subnet: d.subnet, Gateway: d.gateway });
  if (d.subnet6 !== undefined && d.gateway6 !== undefined) config.push({ Subnet: d.subnet6, Gateway: d.gateway6 });
  return config;
}

/** The Engine API request that creates `d`, labelled as lashup's for `agent`. */
export function dockerNetworkSpec(d: DesiredDockerNetwork, agent: string): DockerNetworkSpec {
  return {
    Name: d.name,
    Driver: 'bridge',
    EnableIPv6: d.subnet6 !== undefined,
    IPAM: { Driver: 'default', Config: ipamConfig(d) },
    Options: { [BRIDGE_NAME]: d.bridge, [MASQUERADE]: 'false', [MTU]: String(d.mtu) },
    Labels: { [LASHUP_NETWORK_LABEL]: agent },
  };
}

/** Whether a Docker network carries lashup's label (it was created by lashup). */
export function isLashupNetwork(n: DockerNetwork): boolean {
  return typeof n.Labels?.[LASHUP_NETWORK_LABEL] === 'string';
}

const cidrKey = (text: string | undefined): string => {
  const c = text === undefined ? undefined : parseCidr(text, false);
  return c === undefined ? String(text) : formatCidr(c);
};
const ipKey = (text: string | undefined): string => (text === undefined ? '' : (canonicalIp(text) ?? text));

/** How `existing` differs from `d` (empty when it is as desired), one line per difference. */
export function dockerNetworkDifferences(existing: DockerNetwork, d: DesiredDockerNetwork): string[] {
  const out: string[] = [];
  if (existing.Driver !== 'bridge') out.push(`driver ${existing.Driver}, not bridge`);
  const options = existing.Options ?? {};
  if (options[BRIDGE_NAME] !== d.bridge) out.push(`bridge ${String(options[BRIDGE_NAME])}, not ${d.bridge}`);
  if (options[MASQUERADE] !== 'false') out.push("Docker's masquerade is not off");
  if (options[MTU] !== String(d.mtu)) out.push(`MTU ${String(options[MTU])}, not ${d.mtu}`);
  // Docker gives a bridge network an IPv4 pool of its own when it is asked for IPv6 only: that
  // pool is not a difference (recreating would only get another one).
  const v4 = d.subnet !== undefined;
  const have = (existing.IPAM?.Config ?? [])
    .filter((c) => v4 || (c.Subnet ?? '').includes(':'))
    .map((c) => `${cidrKey(c.Subnet)} via ${ipKey(c.Gateway)}`)
    .sort();
  const want = ipamConfig(d)
    .map((c) => `${cidrKey(c.Subnet)} via ${ipKey(c.Gateway)}`)
    .sort();
  if (have.join(', ') !== want.join(', ')) out.push(`subnets ${have.join(', ') || 'none'}, not ${want.join(', ')}`);
  if (existing.EnableIPv6 !== (d.subnet6 !== undefined)) out.push(`IPv6 ${existing.EnableIPv6 ? 'on' : 'off'}, not ${d.subnet6 !== undefined ? 'on' : 'off'}`);
  return out;
}
