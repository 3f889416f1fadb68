/**
 * Allocation announcements: the master that grants a lease writes it into the store, signed
 * with its own identity, under `allocations` field <agent>. Every agent checks other agents'
 * overlay entries against the masters' allocations before it programs them (routes/trust.ts);
 * a new agent's allocation used to be learnt by asking a master when the agent's entry
 * arrived, one round trip per agent per join on top of the gossip. Measured in
 * `bench e2e` (16 agents, stop 42): the entry reached every agent 30-70 ms after the lease, and
 * the routes appeared 370-1,070 ms after it, the asks (and the disk write of the answer)
 * queued behind the join's work on every agent. Announced, the allocation travels by gossip
 * next to the entry (it leaves the master before the agent even has its lease), and agents
 * ask only when no valid announcement came.
 *
 * Trust: any holder of the cluster key can write any row, so an announcement counts only when
 * it is signed by the identity this node pinned for the master it names (`by`); a forged one
 * is refused and the reader asks the masters, as before. A genuine but old one could be
 * replayed by a released agent to get back addresses the masters have since given to another,
 * so readers (daemon/allocation-view.ts) take none older than a minute and none that shares an
 * address or block with another agent's known allocation (they ask the masters about both).
 * The masters' answer stays the authority: a periodic fetch replaces what announcements taught.
 *
 * Removal: the master that releases an agent removes its announcement with its other rows.
 */
import { canonicalIp } from '../common/index.js';
import type { Lease } from '../ipam/index.js';
import type { KvStore } from '../kv/index.js';
import { ALLOCATIONS_KEY } from './keys.js';
import { rowSignatureProblem, unsignedPart, writeSignedIfChanged, type RowSigner, type RowVerifier } from './signed-rows.js';

/** The field of an announcement naming the master that signed it. */
const BY_FIELD = 'by';
/**
 * The field of an announcement giving the agent's underlay address as the granting master's
 * membership knew it (absent when it did not know the agent yet). Agents route a new agent
 * from its announcement (daemon/overlay-agent.ts) and need that address; their own membership
 * may hear of the join later than the announcement arrives (measured with 32 agents: a few
 * agents programmed the route 0.5-1 s after the rest, waiting for the news).
 */
const UNDERLAY_FIELD = 'underlayIp';

/**
 * Writes `lease` as announced by master `master` (signed by `signer`, its identity), with the
 * agent's underlay address when known, unless the store holds the same announcement already;
 * true when written.
 */
export function announceAllocation(kv: KvStore, lease: Lease, master: string, signer: RowSigner, underlayIp?: string): boolean {
  // JSON drops the optional fields a lease leaves undefined: the store holds plain values only.
  const value = JSON.parse(JSON.stringify({ ...lease, [BY_FIELD]: master, [UNDERLAY_FIELD]: underlayIp })) as Record<string, unknown>;
  return writeSignedIfChanged(kv, signer, ALLOCATIONS_KEY, lease.agent, value);
}

/** Removes `agent`'s announcement (the master that released it); true when one was there. */
export function withdrawAllocation(kv: KvStore, agent: string): boolean {
  if (kv.get(ALLOCATIONS_KEY)?.[agent] === undefined) return false;
  kv.update(ALLOCATIONS_KEY, (m) => m.remove(agent));
  return true;
}

/** Checks announcements: the identities pinned for the masters, and their signatures. */
export interface AnnouncementTrust {
  /** The identity pinned for master `name`, or undefined when `name` is not a pinned master. */
  masterIdentity(name: string): string | undefined;
  verifier: RowVerifier;
}

export type CheckedAnnouncement =
  | {
      ok: true;
      lease: Record<string, unknown>;
      underlayIp?: string;
      /** Why the announcement's `underlayIp` was left out (present, but not an IP address). */
      underlayProblem?: string;
    }
  | { ok: false; reason: string };

/**
 * The allocation row `agent` of `allocations` announces, once its signature is checked against
 * the master it names; the lease's shape is the caller's to check (it reads it as it reads a
 * master's answer). `reason` names what is wrong otherwise.
 */
export function checkAnnouncement(agent: string, raw: unknown, trust: AnnouncementTrust): CheckedAnnouncement {
  const unsigned = unsignedPart(raw);
  if (unsigned === undefined) return { ok: false, reason: `${ALLOCATIONS_KEY} ${agent} is not an object` };
  const by = unsigned[BY_FIELD];
  if (typeof by !== 'string' || by.length === 0) return { ok: false, reason: `${ALLOCATIONS_KEY} ${agent} names no master (expected ${BY_FIELD}: <master name>)` };
  const identity = trust.masterIdentity(by);
  if (identity === undefined) return { ok: false, reason: `${ALLOCATIONS_KEY} ${agent} names ${JSON.stringify(by.slice(0, 64))}, which is not a master this node pinned` };
  const problem = rowSignatureProblem(trust.verifier, identity, ALLOCATIONS_KEY, agent, raw);
  if (problem !== undefined) return { ok: false, reason: problem };
  const lease: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(unsigned)) if (k !== BY_FIELD && k !== UNDERLAY_FIELD) lease[k] = v;
  if (lease['agent'] !== agent) return { ok: false, reason: `${ALLOCATIONS_KEY} ${agent} holds the allocation of ${JSON.stringify(lease['agent'])}` };
  // An address that does not parse is left out, saying why (the agent is then routed once
  // membership knows it); the allocation itself stands.
  const underlay = unsigned[UNDERLAY_FIELD];
  if (underlay === undefined) return { ok: true, lease };
  const underlayIp = typeof underlay === 'string' ? canonicalIp(underlay) : undefined;
  if (underlayIp === undefined) {
    const shown = typeof underlay === 'string' ? JSON.stringify(underlay.slice(0, 64)) : typeof underlay;
    return { ok: true, lease, underlayProblem: `${ALLOCATIONS_KEY} ${agent}.${UNDERLAY_FIELD} = ${shown} is not valid; expected an IPv4 or IPv6 address` };
  }
  return { ok: true, lease, underlayIp };
}
