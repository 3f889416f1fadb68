/**
 * Whether an overlay entry from the store may become routes: it must match the allocation the
 * masters made for the agent it names (VTEP IPv4 and IPv6 addresses, MAC, the network's blocks)
 * and come from the underlay address membership knows for that agent, and be signed by the
 * identity the masters pinned for it (when they pinned one). Any member holding the
 * cluster key can write the store, so without this check one agent could claim another's subnet
 * (with a lower VTEP address it would even win the conflict rule) and take its traffic.
 *
 * Pure: the allocations and underlay addresses are handed in.
 */
import type { Lease } from '../ipam/index.js';

export interface EntryAuthority {
  /** The masters' allocation for `agent`, or undefined when they hold none (as far as known). */
  allocation(agent: string): Lease | undefined;
  /** The underlay address membership knows for `agent`, or undefined when it does not know it. */
  underlay(agent: string): string | undefined;
  /**
   * Why the entry stored under `vtepIp` of `network` is not signed by `peerId` (the identity
   * the masters pinned for its agent), or undefined when it is. Absent: signatures not checked.
   */
  signatureProblem?(network: string, vtepIp: string, raw: unknown, peerId: string): string | undefined;
}

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * Why the entry stored under `vtepIp` in `network`'s map may not be programmed, or undefined
 * when it matches its allocation. An agent membership no longer knows (reaped after a long
 * failure) is checked against its allocation only.
 */
export function untrustedReason(network: string, vtepIp: string, raw: unknown, authority: EntryAuthority): string | undefined {
  if (raw === null || typeof raw !== 'object') return undefined; // Malformed: the entry parser reports it.
  const entry = raw as Record<string, unknown>;
  const nodeId = text(entry['nodeId']);
  if (nodeId === undefined) return undefined;
  const lease = authority.allocation(nodeId);
  if (lease === undefined) return `the masters hold no allocation for ${nodeId}`;
  if (lease.vtepIp !== vtepIp) return `VTEP address ${vtepIp} is not ${nodeId}'s (${lease.vtepIp})`;
  if (text(entry['vtepMac'])?.toLowerCase() !== lease.vtepMac.toLowerCase()) return `VTEP MAC ${String(entry['vtepMac'])} is not ${nodeId}'s (${lease.vtepMac})`;
  const held = lease.networks[network];
  if (held === undefined) return `${nodeId} holds no block of ${network}`;
  if (text(entry['subnet']) !== held.subnet) return `subnet ${String(entry['subnet'])} of ${network} is not ${nodeId}'s (${String(held.subnet)})`;
  if (text(entry['subnet6']) !== held.subnet6) return `IPv6 subnet ${String(entry['subnet6'])} of ${network} is not ${nodeId}'s (${String(held.subnet6)})`;
  if (entry['vtepIp6'] !== undefined && text(entry['vtepIp6']) !== lease.vtepIp6) return `VTEP IPv6 address ${String(entry['vtepIp6'])} is not ${nodeId}'s (${String(lease.vtepIp6)})`;
  if (lease.peerId !== undefined && authority.signatureProblem !== undefined) {
    const problem = authority.signatureProblem(network, vtepIp, raw, lease.peerId);
    if (problem !== undefined) return problem;
  }
  const underlay = authority.underlay(nodeId);
  if (underlay !== undefined && text(entry['agentIp']) !== underlay) return `underlay address ${String(entry['agentIp'])} is not ${nodeId}'s (${underlay}, as membership knows it)`;
  return undefined;
}

interface Verdict {
  readonly network: string;
  readonly vtepIp: string;
  readonly allocation: Lease | undefined;
  readonly underlay: string | undefined;
  readonly reason: string | undefined;
}

/**
 * untrustedReason, remembered per entry object. The overlay agent checks every entry of every
 * network at each recomputation, and a store change or an allocation change recomputes all of
 * them: in the e2e benchmark (16 agents) the checks were over a third of an agent's
 * recomputation time during joins, and they grow with the cluster (every entry, every change).
 *
 * Invariant it relies on: store values are never mutated in place (a changed row is a new
 * object; an unchanged one keeps its object across store changes). A verdict is reused only for
 * the same entry object, under the same network and VTEP key, with the same allocation object
 * and underlay address for its agent: a new allocation (a fetch, an announcement, a release)
 * or a moved underlay checks it again. The signature check depends on nothing else (the
 * identity is the allocation's).
 */
export class TrustCache {
  private readonly verdicts = new WeakMap<object, Verdict>();

  reason(network: string, vtepIp: string, raw: unknown, authority: EntryAuthority): string | undefined {
    if (raw === null || typeof raw !== 'object') return untrustedReason(network, vtepIp, raw, authority);
    const nodeId = text((raw as Record<string, unknown>)['nodeId']);
    const allocation = nodeId === undefined ? undefined : authority.allocation(nodeId);
    const underlay = nodeId === undefined ? undefined : authority.underlay(nodeId);
    const known = this.verdicts.get(raw);
    if (known !== undefined && known.network === network && known.vtepIp === vtepIp && known.allocation === allocation && known.underlay === underlay) return known.reason;
    const reason = untrustedReason(network, vtepIp, raw, authority);
    this.verdicts.set(raw, { network, vtepIp, allocation, underlay, reason });
    return reason;
  }
}
