/**
 * The agent's lease on disk (JSON, written atomically): what lets a restarted agent come back
 * with the same subnet and VTEP even when no master answers.
 */
import { NodeFs, writeFileAtomic, type StorageFs } from '../storage/index.js';
import { LashupError } from '../common/index.js';
import type { Lease, LeaseStore } from '../ipam/index.js';

export class FileLeaseStore implements LeaseStore {
  constructor(
    private readonly path: string,
    private readonly fs: StorageFs = new NodeFs(),
  ) {}

  load(): Lease | undefined {
    const bytes = this.fs.read(this.path);
    if (bytes === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      throw new LashupError('LASHUP_ERR_IPAM_LEASE_INVALID', `${this.path} is not valid JSON (${(err as Error).message})`, { path: this.path });
    }
    const lease = parsed as Partial<Lease>;
    if (typeof lease?.agent !== 'string' || typeof lease.vtepIp !== 'string' || typeof lease.vtepMac !== 'string' || typeof lease.networks !== 'object') {
      throw new LashupError('LASHUP_ERR_IPAM_LEASE_INVALID', `${this.path} does not hold a lease (agent, vtepIp, vtepMac, networks)`, { path: this.path });
    }
    return lease as Lease;
  }

  save(lease: Lease): void {
    writeFileAtomic(this.fs, this.path, `${JSON.stringify(lease, null, 2)}\n`, { mode: 0o600 });
  }
}
