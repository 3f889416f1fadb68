/**
 * The masters' identities as this node pinned them: master name -> libp2p peer id, taken at
 * first contact (the peer id a master advertises in its membership metadata, or the
 * authenticated peer id of the first Raft message it sends) and kept in
 * `<dataDir>/master-ids.json`. Afterwards a member that uses a master's name with another
 * identity is not taken for that master: agents do not ask it for leases or allocations (which
 * it could forge, making them program forged entries), and masters drop Raft messages that
 * claim a master's name from another identity (a forged AppendEntries from a "leader" with a
 * higher term would otherwise rewrite the allocation state on every follower).
 *
 * Trust on first use, as SSH does: a master replaced with a new key (its data directory lost)
 * is refused until its line is removed from the file on every node (`lashup` logs the name and
 * both peer ids, and `lashup_master_identities_mismatches_total` counts the refusals).
 */
import type { Logger } from '../log/index.js';
import { writeFileAtomic, type StorageFs } from '../storage/index.js';

export interface MasterIdentitiesOptions {
  /** The masters' names (configuration `masters`): only these are pinned. */
  masters: readonly string[];
  /** The file the pins are kept in. */
  path: string;
  fs: StorageFs;
  logger?: Logger;
}

export interface MasterIdentitiesStats {
  /** Masters pinned now. */
  pinned: number;
  /** Times a master's name came with another identity than the pinned one (refused). */
  mismatches: number;
}

/** The stable code logged when a master's name comes with another identity. */
export const MASTER_IDENTITY_MISMATCH = 'LASHUP_ERR_MASTER_IDENTITY_MISMATCH';

export class MasterIdentities {
  readonly stats: MasterIdentitiesStats = { pinned: 0, mismatches: 0 };
  private readonly pins = new Map<string, string>();
  private readonly masters: Set<string>;
  private readonly logged = new Set<string>();

  constructor(private readonly options: MasterIdentitiesOptions) {
    this.masters = new Set(options.masters);
    const bytes = options.fs.read(options.path);
    if (bytes === undefined) return;
    try {
      const saved = JSON.parse(new TextDecoder().decode(bytes)) as { masters?: Record<string, unknown> };
      for (const [name, peerId] of Object.entries(saved.masters ?? {})) if (this.masters.has(name) && typeof peerId === 'string' && peerId.length > 0) this.pins.set(name, peerId);
    } catch (err) {
      // Unreadable: start over (pins are re-learnt at first contact); never fail the start for it.
      options.logger?.warn({ path: options.path, err: (err as Error).message }, 'pinned master identities unreadable; pinning them again at first contact');
    }
    this.stats.pinned = this.pins.size;
  }

  /**
   * A master pins its own identity at start (its key is authoritative for its own name, even
   * over an older pin in the file): otherwise the first stranger to claim its name in a Raft
   * message would be pinned as it.
   */
  pinSelf(name: string, peerId: string): void {
    if (!this.masters.has(name) || this.pins.get(name) === peerId) return;
    this.pins.set(name, peerId);
    this.stats.pinned = this.pins.size;
    this.save();
  }

  /** The identity pinned for master `name`, if any. */
  pinned(name: string): string | undefined {
    return this.pins.get(name);
  }

  /**
   * Whether `peerId` may act as master `name`: it is not a master's name (false), or its pin
   * (true when equal), or the first identity seen for it (pinned now, true).
   */
  accept(name: string, peerId: string): boolean {
    if (!this.masters.has(name) || peerId.length === 0) return false;
    const pinned = this.pins.get(name);
    if (pinned === peerId) return true;
    if (pinned === undefined) {
      this.pins.set(name, peerId);
      this.stats.pinned = this.pins.size;
      this.save();
      this.options.logger?.info({ master: name, peerId }, 'master identity pinned at first contact');
      return true;
    }
    this.stats.mismatches++;
    const key = `${name} ${peerId}`;
    if (!this.logged.has(key) && this.logged.size < 64) {
      this.logged.add(key);
      this.options.logger?.error(
        { code: MASTER_IDENTITY_MISMATCH, master: name, pinned, presented: peerId, file: this.options.path },
        `a member uses master ${name}'s name with another identity; it is not taken for that master (if ${name} was reinstalled with a new key, remove its line from ${this.options.path} on every node)`,
      );
    }
    return false;
  }

  private save(): void {
    try {
      writeFileAtomic(this.options.fs, this.options.path, `${JSON.stringify({ version: 1, masters: Object.fromEntries(this.pins) }, null, 1)}\n`, { mode: 0o600 });
    } catch (err) {
      this.options.logger?.warn({ err: (err as Error).message }, 'pinned master identities could not be saved; they are pinned again at the next start');
    }
  }
}
