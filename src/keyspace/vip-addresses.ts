/**
 * Named VIPs' addresses in the store: the leading master publishes the allocator's table at
 * `vip-addresses` (one field per `<name>.<framework>`), every node reads it. What arrives is
 * checked against the committed VIP ranges: an address outside them (a forged write, a bug) is
 * left out and reported by the reader, never programmed.
 */
import { cidrContains, parseAddress, type Cidr } from '../common/index.js';
import type { PlainValue } from '../crdt/index.js';
import type { VipAddress } from '../ipam/index.js';
import type { KvStore } from '../kv/index.js';
import { VIP_ADDRESSES_KEY } from './keys.js';
import { writeIfChanged } from './write.js';

/** Makes the store's table equal to `table` (fields written when changed, removed when gone); true when anything changed. */
export function publishVipAddresses(kv: KvStore, table: Readonly<Record<string, VipAddress>>): boolean {
  let changed = false;
  for (const [key, address] of Object.entries(table)) {
    if (writeIfChanged(kv, VIP_ADDRESSES_KEY, key, { ...address } as unknown as PlainValue)) changed = true;
  }
  const stale = Object.keys(kv.get(VIP_ADDRESSES_KEY) ?? {}).filter((key) => table[key] === undefined);
  if (stale.length > 0) {
    kv.update(VIP_ADDRESSES_KEY, (m) => {
      for (const key of stale) m.remove(key);
    });
    changed = true;
  }
  return changed;
}

/** The published table, each address checked to lie in its range; `refused` lists the fields left out. */
export function readVipAddresses(kv: KvStore, ranges: { vip: Cidr; vip6: Cidr }): { table: Map<string, VipAddress>; refused: string[] } {
  const table = new Map<string, VipAddress>();
  const refused: string[] = [];
  const inside = (ip: unknown, range: Cidr): ip is string => {
    const parsed = typeof ip === 'string' ? parseAddress(ip) : undefined;
    return parsed !== undefined && cidrContains(range, parsed.family, parsed.value);
  };
  for (const [key, raw] of Object.entries(kv.get(VIP_ADDRESSES_KEY) ?? {})) {
    const row = raw as { ip?: unknown; ip6?: unknown } | null;
    if (row === null || typeof row !== 'object' || !inside(row.ip, ranges.vip) || (row.ip6 !== undefined && !inside(row.ip6, ranges.vip6))) {
      refused.push(key);
      continue;
    }
    table.set(key, row.ip6 === undefined ? { ip: row.ip } : { ip: row.ip, ip6: row.ip6 as string });
  }
  return { table, refused };
}
