/** Agents' own rows: overlay entries and container address usage. */
import type { PlainValue } from '../crdt/index.js';
import type { KvStore } from '../kv/index.js';
import type { OverlayEntry } from '../routes/index.js';
import { cniUsageKey, dockerUsageKey, OVERLAY_KEY_PREFIX, overlayKey } from './keys.js';
import { type RowSigner, writeSignedIfChanged } from './signed-rows.js';
import { writeIfChanged } from './write.js';

/**
 * Writes an agent's entry into `overlay/<network>` under its VTEP address, signed when a signer
 * is given (see signed-rows.ts); true when it changed.
 */
export function publishOverlayEntry(kv: KvStore, network: string, vtepIp: string, entry: OverlayEntry, signer?: RowSigner): boolean {
  if (signer !== undefined) return writeSignedIfChanged(kv, signer, overlayKey(network), vtepIp, entry as unknown as Record<string, unknown>);
  return writeIfChanged(kv, overlayKey(network), vtepIp, entry as unknown as PlainValue);
}

/** Removes a released agent's entries from every overlay map (run by the master that released it). */
export function removeAgentEntries(kv: KvStore, vtepIp: string): number {
  let removed = 0;
  for (const key of kv.keys(OVERLAY_KEY_PREFIX)) {
    if (kv.get(key)?.[vtepIp] === undefined) continue;
    kv.update(key, (m) => m.remove(vtepIp));
    removed++;
  }
  return removed;
}

/** One agent's container address usage in one network. */
export interface CniUsage {
  used: number;
  total: number;
  exhausted: boolean;
}

/** Publishes this agent's usage of `network` (only when it changed; signed when a signer is given); true when written. */
export function publishCniUsage(kv: KvStore, network: string, agent: string, usage: CniUsage, signer?: RowSigner): boolean {
  const value = { used: usage.used, total: usage.total, exhausted: usage.exhausted };
  if (signer !== undefined) return writeSignedIfChanged(kv, signer, cniUsageKey(network), agent, value);
  return writeIfChanged(kv, cniUsageKey(network), agent, value);
}

/** Publishes this agent's Docker half usage of `network` (as publishCniUsage); true when written. */
export function publishDockerUsage(kv: KvStore, network: string, agent: string, usage: { used: number; total: number }, signer?: RowSigner): boolean {
  const value = { used: usage.used, total: usage.total, exhausted: usage.used >= usage.total };
  if (signer !== undefined) return writeSignedIfChanged(kv, signer, dockerUsageKey(network), agent, value);
  return writeIfChanged(kv, dockerUsageKey(network), agent, value);
}

/** Every agent's published Docker half usage of `network`, by agent name. */
export function readDockerUsage(kv: KvStore, network: string): Record<string, CniUsage> {
  return readUsageRows(kv, dockerUsageKey(network));
}

/** Every agent's published usage of `network`, by agent name (rows that are not usage left out). */
export function readCniUsage(kv: KvStore, network: string): Record<string, CniUsage> {
  return readUsageRows(kv, cniUsageKey(network));
}

function readUsageRows(kv: KvStore, key: string): Record<string, CniUsage> {
  const out: Record<string, CniUsage> = {};
  for (const [agent, raw] of Object.entries(kv.get(key) ?? {})) {
    const r = raw as Partial<CniUsage> | null;
    if (r === null || typeof r !== 'object' || typeof r.used !== 'number' || typeof r.total !== 'number') continue;
    Object.defineProperty(out, agent, { value: { used: r.used, total: r.total, exhausted: r.exhausted === true }, enumerable: true });
  }
  return out;
}
