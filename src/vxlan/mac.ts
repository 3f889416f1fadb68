/**
 * VTEP MACs: the configured OUI plus the low 24 bits of the VTEP's IPv4 address
 * (44.128.0.1 -> 70:b3:d5:80:00:01 under 70:b3:d5). Derived, never random, so an agent that
 * restarts keeps its MAC and every peer's neighbour and FDB entries for it stay valid.
 */
import { canonicalMac, parseIp } from '../common/index.js';
import { invalidSpec } from './errors.js';

export const DEFAULT_VTEP_OUI = '70:b3:d5:00:00:00';

/** Validates an OUI written as a MAC with zero low bytes; returns its three bytes. */
export function parseOui(oui: unknown, path = 'vtepMacOui'): [number, number, number] {
  const mac = typeof oui === 'string' ? canonicalMac(oui) : undefined;
  if (mac === undefined || !mac.endsWith(':00:00:00')) invalidSpec(path, oui, 'a MAC "xx:xx:xx:00:00:00" (the low three bytes come from the VTEP address)');
  const bytes = mac
    .split(':')
    .slice(0, 3)
    .map((b) => parseInt(b, 16)) as [number, number, number];
  // A set low bit of the first byte makes a multicast address, which no interface may own.
  if ((bytes[0] & 1) !== 0) invalidSpec(path, oui, 'a unicast OUI (even first byte)');
  return bytes;
}

export function vtepMac(vtepIp: string, oui: string = DEFAULT_VTEP_OUI): string {
  const ip = parseIp(vtepIp);
  if (ip === undefined || ip.family !== 4) invalidSpec('vtepIp', vtepIp, 'an IPv4 address (the MAC takes its low 24 bits)');
  const [a, b, c] = parseOui(oui);
  return [a, b, c, ip.bytes[1] as number, ip.bytes[2] as number, ip.bytes[3] as number].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * A bridge's MAC: locally administered (02:...) and derived from the bridge name, so it never
 * changes. Left to the kernel, a Linux bridge takes the lowest MAC among its ports and changes
 * it as containers come and go: every container's ARP entry for its gateway goes stale, and the
 * CNI bridge plugin's CHECK fails ("Bridge interface ... Mac doesn't match").
 */
export function bridgeMac(name: string): string {
  // FNV-1a over the name: stable, and different for m-<net> and d-<net>.
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return [0x02, 0x6c, (h >>> 24) & 255, (h >>> 16) & 255, (h >>> 8) & 255, h & 255].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
