/**
 * Address usage for /metrics and the status page, derived from state at each scrape (nothing to
 * keep in step): on masters, the allocator's per-agent blocks per network and family; on every
 * node, the container addresses each agent publishes for its own blocks (CNI and Docker halves).
 * The alert "address exhaustion approaching" (packaging/prometheus/lashup-alerts.yml) divides the
 * used by the capacity series.
 */
import type { NetworkUsage } from '../ipam/index.js';
import { readCniUsage, readDockerUsage } from '../keyspace/index.js';
import type { KvStore } from '../kv/index.js';

/** `{ network: { family: n } }` and `{ network: { kind: n } }` records, as the metric catalog's `usage` component reads them. */
export interface UsageMetrics {
  blocksUsed?: Record<string, Record<string, number>>;
  blocksCapacity?: Record<string, Record<string, number>>;
  addressesUsed: Record<string, Record<string, number>>;
  addressesCapacity: Record<string, Record<string, number>>;
}

function put(target: Record<string, Record<string, number>>, outer: string, inner: string, value: number): void {
  // defineProperty: network names come from the store, and a "__proto__" must stay a plain key.
  if (!Object.hasOwn(target, outer)) Object.defineProperty(target, outer, { value: {}, enumerable: true, writable: true });
  Object.defineProperty(target[outer] as Record<string, number>, inner, { value, enumerable: true, writable: true });
}

/**
 * Masters pass `blocks` (the allocator's usage); agents pass `agent` (their own name) and get
 * their own container addresses; masters get the sum over every agent.
 */
export function usageMetrics(kv: KvStore, networks: readonly string[], options: { blocks?: readonly NetworkUsage[]; agent?: string }): UsageMetrics {
  const out: UsageMetrics = { addressesUsed: {}, addressesCapacity: {} };
  if (options.blocks !== undefined) {
    out.blocksUsed = {};
    out.blocksCapacity = {};
    for (const u of options.blocks) {
      put(out.blocksUsed, u.network, String(u.family), u.used);
      put(out.blocksCapacity, u.network, String(u.family), u.total);
    }
  }
  for (const network of networks) {
    for (const [kind, rows] of [
      ['cni', readCniUsage(kv, network)],
      ['docker', readDockerUsage(kv, network)],
    ] as const) {
      let used = 0;
      let capacity = 0;
      let seen = false;
      for (const [agent, usage] of Object.entries(rows)) {
        if (options.agent !== undefined && agent !== options.agent) continue;
        used += usage.used;
        capacity += usage.total;
        seen = true;
      }
      if (!seen) continue;
      put(out.addressesUsed, network, kind, used);
      put(out.addressesCapacity, network, kind, capacity);
    }
  }
  return out;
}
