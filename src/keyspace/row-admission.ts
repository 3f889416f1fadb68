/**
 * Who may write which rows of the store, checked on every replica for every remote write:
 *
 *   overlay/<network>      field <VTEP IPv4>   the agent the masters gave that VTEP address
 *   cni-usage/<network>    field <agent>       that agent
 *   docker-usage/<network> field <agent>       that agent
 *   tasks                  field <agent>       that agent
 *
 * Once the owner is known with the identity the masters pinned for it (its libp2p peer id,
 * bound when it first asked for its lease), a remote write that changes such a field is
 * refused unless the new value is signed by that identity and newer than the signed value
 * held; removing the field is refused too (the owner's row stays until the masters release
 * the owner: then it has no owner and the releasing master's removal passes).
 *
 * A field whose owner is not known here (an allocation not learnt yet, or a lease from a
 * master that did not pin identities) passes: readers check entries against allocations
 * before use (routes/trust.ts) and report what they refuse, and the owner puts its row back
 * when it sees it overwritten. Refusing there would stall every new agent's entry until this
 * replica learnt its allocation.
 */
import type { FieldChange, KvAdmission } from '../kv/index.js';
import { CNI_USAGE_PREFIX, DOCKER_USAGE_PREFIX, OVERLAY_KEY_PREFIX, TASKS_KEY } from './keys.js';
import { rowSignature, rowSignatureProblem, type RowVerifier } from './signed-rows.js';

/** What a replica knows of the masters' allocations, for ownership. */
export interface RowOwnership {
  /** The agent holding VTEP address `vtepIp`, with its pinned identity (when pinned). */
  byVtep(vtepIp: string): { agent: string; peerId?: string | undefined } | undefined;
  /** The allocation of `agent`, with its pinned identity (when pinned). */
  byAgent(agent: string): { agent: string; peerId?: string | undefined } | undefined;
  /** A write touching `agent`'s rows was refused: what is known of it may be stale (ask again). */
  contested?(agent: string): void;
}

export interface OwnedRowsStats {
  /** Refused writes, by reason kind. */
  refused: { unsigned: number; forged: number; replayed: number; removal: number };
  /** Changed fields that passed because their owner is not known here. */
  unknownOwner: number;
  /** Signatures checked. */
  verified: number;
}

/** The owner of a row, when known (an owner without a pinned identity is treated as unknown). */
function ownerOf(ownership: RowOwnership, key: string, field: string): { agent: string; peerId: string } | undefined {
  const owner = key.startsWith(OVERLAY_KEY_PREFIX)
    ? ownership.byVtep(field)
    : key.startsWith(CNI_USAGE_PREFIX) || key.startsWith(DOCKER_USAGE_PREFIX) || key === TASKS_KEY
      ? ownership.byAgent(field)
      : undefined;
  return owner?.peerId === undefined ? undefined : { agent: owner.agent, peerId: owner.peerId };
}

export class OwnedRowsAdmission implements KvAdmission {
  readonly stats: OwnedRowsStats = { refused: { unsigned: 0, forged: 0, replayed: 0, removal: 0 }, unknownOwner: 0, verified: 0 };

  constructor(
    private readonly ownership: RowOwnership,
    private readonly verifier: RowVerifier,
  ) {}

  guards(key: string): boolean {
    return key.startsWith(OVERLAY_KEY_PREFIX) || key.startsWith(CNI_USAGE_PREFIX) || key.startsWith(DOCKER_USAGE_PREFIX) || key === TASKS_KEY;
  }

  refuse(key: string, changes: readonly FieldChange[]): string | undefined {
    for (const change of changes) {
      const owner = ownerOf(this.ownership, key, change.name);
      if (owner === undefined) {
        this.stats.unknownOwner++;
        continue;
      }
      const reason = this.problem(key, change, owner);
      if (reason !== undefined) {
        this.ownership.contested?.(owner.agent);
        return reason;
      }
    }
    return undefined;
  }

  private problem(key: string, change: FieldChange, owner: { agent: string; peerId: string }): string | undefined {
    if (change.after === undefined) {
      this.stats.refused.removal++;
      return `${key} ${change.name} belongs to ${owner.agent}, which still holds an allocation: it is not removed by another member`;
    }
    this.stats.verified++;
    const problem = rowSignatureProblem(this.verifier, owner.peerId, key, change.name, change.after);
    if (problem !== undefined) {
      if (rowSignature(change.after) === undefined) this.stats.refused.unsigned++;
      else this.stats.refused.forged++;
      return `${owner.agent}'s row refused: ${problem}`;
    }
    const before = rowSignature(change.before);
    const after = rowSignature(change.after) as { ts: number };
    // The value held counts only when the owner signed it too (anything else may be replaced).
    if (before !== undefined && after.ts <= before.ts && rowSignatureProblem(this.verifier, owner.peerId, key, change.name, change.before) === undefined) {
      this.stats.refused.replayed++;
      return `${key} ${change.name}: ${owner.agent}'s value signed at ${after.ts} is not newer than the one held (${before.ts}); an old write replayed`;
    }
    return undefined;
  }
}
