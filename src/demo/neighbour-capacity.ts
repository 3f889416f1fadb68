/**
 * Room in the kernel's neighbour tables for a test network.
 *
 * The ARP and NDISC tables are one table each for the whole kernel, shared by every network
 * namespace, and their hard limit (net.ipv4.neigh.default.gc_thresh3, default 1,024) counts the
 * entries of all namespaces together. A namespace network of H hosts needs up to H x H underlay
 * entries (masters talk to every agent, agents to every agent they send overlay traffic to),
 * doubled here for the overlay's own entries and for headroom: 3 masters + 32 agents + spares
 * went past 1,024, the kernel logged "neighbor table overflow",
 * and every host that had not resolved its peers before could no longer reach anyone (agents
 * started after formation never joined; the e2e benchmark saw no lease for 30 s).
 *
 * A real cluster does not share one kernel, so this is a property of the test network; but a
 * master of a large cluster on one L2 segment resolves every agent too (see README, operations).
 *
 * Raised only when the network needs it, restored to the saved values when the last network
 * that raised it is destroyed.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const LIMITS = [
  { path: '/proc/sys/net/ipv4/neigh/default/gc_thresh3', share: 1 },
  { path: '/proc/sys/net/ipv4/neigh/default/gc_thresh2', share: 0.5 },
  { path: '/proc/sys/net/ipv6/neigh/default/gc_thresh3', share: 1 },
  { path: '/proc/sys/net/ipv6/neigh/default/gc_thresh2', share: 0.5 },
] as const;

/** Values before the first raise, while any network holds a reservation. */
let saved: Map<string, string> | undefined;
let holders = 0;

/** Neighbour entries a network of `hosts` hosts may need: underlay H x H, doubled for overlay entries and headroom. */
export function neighbourEntriesFor(hosts: number): number {
  return 2 * hosts * hosts;
}

/**
 * Makes sure the kernel's neighbour tables can hold a network of `hosts` hosts; returns the
 * release function (idempotent). Throws, naming the setting, when they are too small and cannot
 * be raised.
 */
export function reserveNeighbourCapacity(hosts: number): () => void {
  const needed = neighbourEntriesFor(hosts);
  const current = Number(readFileSync(LIMITS[0].path, 'utf8').trim());
  if (current >= needed) return () => {};
  try {
    if (saved === undefined) saved = new Map(LIMITS.map((l) => [l.path, readFileSync(l.path, 'utf8').trim()]));
    for (const l of LIMITS) {
      const value = Math.ceil(needed * l.share);
      if (Number(readFileSync(l.path, 'utf8').trim()) < value) writeFileSync(l.path, String(value));
    }
  } catch (err) {
    throw new Error(
      `a test network of ${hosts} hosts needs about ${needed} neighbour entries; the kernel's table, shared by every namespace, holds ${current} (net.ipv4.neigh.default.gc_thresh3) and could not be raised: ${(err as Error).message}`,
    );
  }
  holders++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holders--;
    if (holders > 0 || saved === undefined) return;
    for (const [path, value] of saved) {
      try {
        writeFileSync(path, value);
      } catch {
        // Nothing more to do: the raised limit only allows more entries.
      }
    }
    saved = undefined;
  };
}
