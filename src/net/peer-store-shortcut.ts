/**
 * The peer-store write libp2p makes for every stream, answered from memory once it holds.
 *
 * libp2p 3.3 merges `{ protocols: [protocol] }` into its peer store for every stream it opens
 * and every stream it accepts (connection.js: newStream, onIncomingStream), "so that the store
 * lists the protocol". Each merge takes the peer's write lock, reads and decodes the peer's
 * protobuf record, builds and encodes a new one and writes it back, all through promises: the
 * record changes only the first time a peer uses a protocol. Every anti-entropy round, lease
 * request and keep is a stream, so a forming cluster pays this thousands of times (the merges
 * were 7 % of a 7-node process's CPU while a 60-node cluster formed, the largest libp2p item
 * after the ciphers). Two nodes on loopback, a stream opened, echoed once and closed, CPU of
 * both ends (three pairs of runs, median of 8 x 250 streams each): 1,141-1,402 us without the
 * shortcut, 843-1,002 us with it.
 *
 * The shortcut: a protocol-only merge of a protocol this store already took for that peer,
 * within the last SHORTCUT_TTL_MS, returns the record the last real merge returned instead of
 * running again. Anything else (addresses, metadata, tags, several protocols) goes to the store.
 * What was learned about a peer is forgotten when its record is saved, patched or deleted, or
 * takes a signed peer record: any of them may drop a protocol, and the next merge then runs.
 *
 * What is lost: the record's `updated` time is refreshed once per TTL rather than per stream.
 * The store forgets a peer only after 6 hours without an update and without a fresh address,
 * so a peer in use still never expires. The protocols listed are the same: the merge skipped
 * would have written the same set.
 *
 * Written here: libp2p has no option for it. Installed on each node's own store instance at
 * start (src/net/libp2p.ts), so nothing global changes.
 */

/** How long a protocol merge that held is taken as still holding, ms. */
export const SHORTCUT_TTL_MS = 10 * 60_000;

/** Peers remembered at most; all are forgotten when a new one would pass this. */
const MAX_PEERS_KNOWN = 4096;

/** The peer-store methods the shortcut wraps (libp2p's PeerStore; peer ids by their string). */
export interface PeerStoreLike {
  merge(id: { toString(): string }, data: object, options?: object): Promise<unknown>;
  save(id: { toString(): string }, data: object, options?: object): Promise<unknown>;
  patch(id: { toString(): string }, data: object, options?: object): Promise<unknown>;
  delete(id: { toString(): string }, options?: object): Promise<void>;
  consumePeerRecord(buf: Uint8Array, ...rest: unknown[]): Promise<boolean>;
}

export interface PeerStoreShortcutStats {
  /** Protocol merges answered from memory. */
  skipped: number;
  /** Protocol merges that ran (first use, after the TTL, after the record changed). */
  merged: number;
}

interface Known {
  /** Protocol -> when its merge held, ms. */
  protocols: Map<string, number>;
  /** What the last real merge returned (the callers that skip are libp2p's, which ignore it). */
  record: unknown;
}

/** The single protocol of a protocol-only merge, or undefined for any other merge. */
function onlyProtocol(data: object): string | undefined {
  const keys = Object.keys(data);
  if (keys.length !== 1 || keys[0] !== 'protocols') return undefined;
  const protocols = (data as { protocols?: unknown }).protocols;
  return Array.isArray(protocols) && protocols.length === 1 && typeof protocols[0] === 'string' ? protocols[0] : undefined;
}

/**
 * Installs the shortcut on `store` (this instance only) and returns its counters. `nowMs` is
 * the clock the TTL is read on.
 */
export function installPeerStoreShortcut(store: PeerStoreLike, nowMs: () => number = Date.now): PeerStoreShortcutStats {
  const stats: PeerStoreShortcutStats = { skipped: 0, merged: 0 };
  const known = new Map<string, Known>();
  /**
   * Bumped by every change that may drop a protocol (rare): a merge that started before it does
   * not record its result as holding, since its write may have been replaced since.
   */
  let epoch = 0;
  const forget = (peer: string | undefined): void => {
    if (peer === undefined) known.clear();
    else known.delete(peer);
    epoch++;
  };
  const merge = store.merge.bind(store);
  const save = store.save.bind(store);
  const patch = store.patch.bind(store);
  const remove = store.delete.bind(store);
  const consume = store.consumePeerRecord.bind(store);

  store.merge = async (id, data, options) => {
    const protocol = onlyProtocol(data);
    if (protocol === undefined) return merge(id, data, options);
    const peer = id.toString();
    const entry = known.get(peer);
    const heldAtMs = entry?.protocols.get(protocol);
    if (entry !== undefined && heldAtMs !== undefined && nowMs() - heldAtMs < SHORTCUT_TTL_MS) {
      stats.skipped++;
      return entry.record;
    }
    stats.merged++;
    const startedInEpoch = epoch;
    const record = await merge(id, data, options);
    if (epoch === startedInEpoch) {
      let now = known.get(peer);
      if (now === undefined) {
        // Bounded: peers that left without a delete would otherwise stay for good.
        if (known.size >= MAX_PEERS_KNOWN) known.clear();
        now = { protocols: new Map(), record };
        known.set(peer, now);
      }
      now.record = record;
      now.protocols.set(protocol, nowMs());
    }
    return record;
  };
  store.save = (id, data, options) => {
    forget(id.toString());
    return save(id, data, options);
  };
  store.patch = (id, data, options) => {
    forget(id.toString());
    return patch(id, data, options);
  };
  store.delete = (id, options) => {
    forget(id.toString());
    return remove(id, options);
  };
  // A signed record names its peer only inside it: whoever it was, start over (rare: identify).
  store.consumePeerRecord = (buf, ...rest) => {
    forget(undefined);
    return consume(buf, ...rest);
  };
  return stats;
}
