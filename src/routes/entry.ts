/**
 * Overlay entries as agents publish them in the store: key `overlay/<network>`, a map from the
 * agent's VTEP IP to its entry. Entries come from other nodes, so they are validated field by
 * field; a bad one is reported (typed error naming the field) and left out, never thrown.
 */
import { canonicalIp, canonicalMac, formatCidr, parseCidr, parseIp } from '../common/index.js';
import type { Lease } from '../ipam/index.js';
import { RoutesError, RoutesErrorCode } from './errors.js';

/** Store key prefix of overlay entries. */
export const OVERLAY_KEY_PREFIX = 'overlay/';

export const overlayKey = (network: string): string => `${OVERLAY_KEY_PREFIX}${network}`;

/** One agent's entry in one overlay network (all text canonical after `parseOverlayEntry`). */
export interface OverlayEntry {
  /** The agent's underlay address: where VXLAN packets for it go. */
  agentIp: string;
  /** Its VTEP MAC. */
  vtepMac: string;
  /** Its IPv4 block of this network (absent for IPv6-only networks). */
  subnet?: string;
  /** Its IPv6 block of this network. */
  subnet6?: string;
  /** Its VTEP IPv6 address: the gateway of `subnet6` (required with it). */
  vtepIp6?: string;
  /** Its membership node id. */
  nodeId: string;
}

/**
 * The entry an agent holding `lease` publishes in `network`'s map (undefined when the lease has
 * no block of that network), with `agentIp` its underlay address. The agent writes exactly this
 * (overlay-agent.ts), and other agents build the same from a master's allocation announcement
 * while that entry is on its way: one definition, so the two never differ and the arrival of
 * the real entry changes no route.
 */
export function leaseEntry(lease: Lease, network: string, agentIp: string): OverlayEntry | undefined {
  const n = lease.networks[network];
  if (n === undefined) return undefined;
  const entry: OverlayEntry = { agentIp, vtepMac: lease.vtepMac, nodeId: lease.agent };
  if (n.subnet !== undefined) entry.subnet = n.subnet;
  if (n.subnet6 !== undefined && lease.vtepIp6 !== undefined) {
    entry.subnet6 = n.subnet6;
    entry.vtepIp6 = lease.vtepIp6;
  }
  return entry;
}

function field(value: unknown, name: string, network: string, vtepIp: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) bad(network, vtepIp, name, value, 'a non-empty string');
  return value;
}

function bad(network: string, vtepIp: string, name: string, value: unknown, expected: string): never {
  throw new RoutesError(RoutesErrorCode.InvalidEntry, `overlay/${network}[${vtepIp}].${name} = ${JSON.stringify(value)} is not valid; expected ${expected}`, {
    network,
    vtepIp,
    field: name,
    value: typeof value === 'string' ? value.slice(0, 80) : typeof value,
  });
}

function cidr(value: unknown, name: string, family: 4 | 6, network: string, vtepIp: string): string {
  const parsed = typeof value === 'string' ? parseCidr(value) : undefined;
  if (parsed === undefined || parsed.family !== family) bad(network, vtepIp, name, value, `an IPv${family} network in CIDR form with zero host bits`);
  return formatCidr(parsed);
}

/** Validates and canonicalizes one entry; throws a RoutesError (InvalidEntry) naming the field. */
export function parseOverlayEntry(network: string, vtepIpText: string, raw: unknown): { vtepIp: string; entry: OverlayEntry } {
  const vtep = parseIp(vtepIpText);
  if (vtep === undefined || vtep.family !== 4) bad(network, vtepIpText, 'key', vtepIpText, 'the agent VTEP IPv4 address as the map key');
  const vtepIp = canonicalIp(vtepIpText) as string;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad(network, vtepIp, 'entry', raw, 'an object with agentIp, vtepMac, nodeId and subnet and/or subnet6');
  const r = raw as Record<string, unknown>;
  const agentIp = canonicalIp(field(r['agentIp'], 'agentIp', network, vtepIp));
  if (agentIp === undefined) bad(network, vtepIp, 'agentIp', r['agentIp'], 'an IPv4 or IPv6 address');
  const vtepMac = canonicalMac(field(r['vtepMac'], 'vtepMac', network, vtepIp));
  if (vtepMac === undefined) bad(network, vtepIp, 'vtepMac', r['vtepMac'], 'a MAC address "xx:xx:xx:xx:xx:xx"');
  const nodeId = field(r['nodeId'], 'nodeId', network, vtepIp);
  const entry: OverlayEntry = { agentIp, vtepMac, nodeId };
  if (r['subnet'] !== undefined) entry.subnet = cidr(r['subnet'], 'subnet', 4, network, vtepIp);
  if (r['subnet6'] !== undefined) {
    entry.subnet6 = cidr(r['subnet6'], 'subnet6', 6, network, vtepIp);
    const ip6 = typeof r['vtepIp6'] === 'string' ? parseIp(r['vtepIp6']) : undefined;
    if (ip6 === undefined || ip6.family !== 6) bad(network, vtepIp, 'vtepIp6', r['vtepIp6'], 'the agent VTEP IPv6 address (required with subnet6)');
    entry.vtepIp6 = canonicalIp(r['vtepIp6'] as string) as string;
  }
  if (entry.subnet === undefined && entry.subnet6 === undefined) bad(network, vtepIp, 'subnet', r['subnet'], 'subnet and/or subnet6');
  return { vtepIp, entry };
}
