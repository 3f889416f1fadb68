/**
 * Allocator masters on the simulated network, built alike for the tests of the allocator's
 * protocols: masters m1-m3, memory Raft storage, a host's name as its address and as the peer
 * a stream comes from (so `acceptSender` is a name check).
 */
import { AllocatorMaster, DEFAULT_OVERLAY_CONFIG } from '../../src/ipam/index.js';
import type { SimTransports } from '../../src/net/index.js';
import type { Simulation } from '../../src/sim/index.js';
import { MemoryRaftStorage } from '../../src/testing/index.js';

export const SIM_MASTERS = ['m1', 'm2', 'm3'];

export interface SimMasterOptions {
  storage?: MemoryRaftStorage;
  /** The rng stream's name (default: the master's name). */
  rngName?: string;
  /** Whether this master's membership has an address for `other` (default: always). */
  knows?: (other: string) => boolean;
}

/** Starts master `name` on its host's transports. */
export function startSimMaster(sim: Simulation, hosts: ReadonlyMap<string, SimTransports>, name: string, options: SimMasterOptions = {}): AllocatorMaster {
  const master = new AllocatorMaster({
    name,
    masters: SIM_MASTERS,
    overlay: DEFAULT_OVERLAY_CONFIG,
    storage: options.storage ?? new MemoryRaftStorage(),
    streams: (hosts.get(name) as SimTransports).streams,
    clock: sim.scheduler.clock(),
    rng: sim.rng.fork(options.rngName ?? name),
    addressOf: (n) => (n === name || options.knows === undefined || options.knows(n) ? n : undefined),
    // On the simulated network a stream's remote address is its host's name.
    acceptSender: (n, from) => n === from,
  });
  master.start();
  return master;
}
