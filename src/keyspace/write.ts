import { plainEquals, type PlainValue } from '../crdt/index.js';
import type { KvStore } from '../kv/index.js';

/**
 * Writes `value` at `key`'s `field` unless it holds an equal value already; true when written.
 * Equality is the store's own (`plainEquals`: key order does not matter). Comparing JSON text
 * instead rewrote values whose fields came back from the network in another order: one
 * needless delta flooded to the whole cluster per check.
 */
export function writeIfChanged(kv: KvStore, key: string, field: string, value: PlainValue): boolean {
  const current = kv.get(key)?.[field];
  if (current !== undefined && plainEquals(current as PlainValue, value)) return false;
  const marker = kv.marker();
  kv.update(key, (m) => m.lww(field).write(marker, value));
  return true;
}
