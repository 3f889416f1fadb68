/**
 * How gossipsub learns its peers and opens its outbound streams, adjusted for a node that many
 * peers connect to at once.
 *
 * Peers: gossipsub hears of a peer from libp2p's registrar once identify has told it the peer's
 * protocols. This node runs identify on no connection of its own (see libp2p.ts: it was half of
 * a short-lived connection's CPU); instead the connections it keeps with other lashup nodes,
 * which speak gossipsub by construction, are handed to gossipsub here (`attachGossipPeer`), and
 * taken back when the peer's last connection closes (`detachGossipPeer`: the registrar, which
 * finds no protocols in the peer store, would not).
 *
 * Streams: gossipsub (@libp2p/gossipsub 17) sends to a peer only on the one outbound stream it
 * opened to it, and opens those streams through a single queue, one after another. Two of its
 * behaviours lost or delayed deltas at cluster formation:
 *
 * 1. One at a time. Each stream is a multistream negotiation, a round trip to the peer; a node
 *    that joined and got 5-10 connections within a second waited for the round trips in a row,
 *    on peers whose event loops were saturated by the formation. In a 60-node formation a node
 *    held its first write for over 4 s after it saw every member alive (bench cluster, debug
 *    output: no subscriber gossipsub could send to yet). Here streams to different peers open in
 *    parallel; to one peer they still open one after another, so gossipsub's own check ("a
 *    stream to this peer exists already") still prevents a second one.
 * 2. Never reopened. When the connection that carries the stream closes while another
 *    connection to the same peer stays open (this node closes idle short-lived connections, such
 *    as a join's to a seed that later became a kept peer), gossipsub forgets the stream and opens
 *    no other: the peer stays in its mesh and every send to it is dropped without an error until
 *    the last connection closes. Here the stream is reopened on a remaining connection.
 *
 * All of this reaches into gossipsub's class (`onPeerConnected`, `onPeerDisconnected`,
 * `createOutboundStream`, `streamsOutbound`, `peers`, and `status` for the heartbeat timer its
 * stop leaves behind, see clearHeartbeatOnStop), which its service interface does not
 * expose; this file is the one place that does (the outbox in libp2p.ts reads the streams
 * through `outboundStreamsOf`). A version without them is left as it is: the functions return
 * false, libp2p.ts then runs identify on each kept connection so the registrar tells gossipsub,
 * and the node works as before, only slower to start (the unit test fails at such an upgrade).
 */
import type { Connection, PeerId } from '@libp2p/interface';

interface GossipsubInternals {
  onPeerConnected(peerId: PeerId, connection: Connection): void;
  onPeerDisconnected(peerId: PeerId): void;
  createOutboundStream(peerId: PeerId, connection: Connection): Promise<void>;
  streamsOutbound: Map<string, unknown>;
  peers: Map<string, unknown>;
}

interface ConnectionSource {
  getConnections(peerId?: PeerId): Connection[];
  addEventListener(type: 'connection:close', listener: (event: CustomEvent<Connection>) => void): void;
}

/** Counters of the adjustments, for the node's stats. */
export interface OutboundStreamStats {
  /** Outbound gossipsub streams reopened on another connection after theirs closed. */
  gossipStreamsReopened: number;
}

/**
 * Gossipsub's map of this node's open streams to its peers, by peer id: public on the class in
 * @libp2p/gossipsub 17 but not on its service interface. Undefined if a version lacks it (its
 * unit test fails then, at the upgrade, not in a cluster).
 */
export function outboundStreamsOf(pubsub: object): ReadonlyMap<string, unknown> | undefined {
  const map = (pubsub as { streamsOutbound?: unknown }).streamsOutbound;
  return map instanceof Map ? map : undefined;
}

function internalsOf(pubsub: object): GossipsubInternals | undefined {
  const p = pubsub as Partial<GossipsubInternals>;
  if (
    typeof p.createOutboundStream !== 'function' ||
    typeof p.onPeerConnected !== 'function' ||
    typeof p.onPeerDisconnected !== 'function' ||
    outboundStreamsOf(pubsub) === undefined ||
    !(p.peers instanceof Map)
  )
    return undefined;
  return p as GossipsubInternals;
}

/**
 * Makes `pubsub` open its outbound streams in parallel across peers and reopen one whose
 * connection closed while another connection to the peer is open, and calls `onOpened` once a
 * stream is open (gossipsub has no event for it; messages held until a peer can be sent to
 * waited for the next heartbeat, up to a second). Returns false (and changes nothing) when
 * this gossipsub version lacks the internals it relies on.
 */
export function adjustOutboundStreams(pubsub: object, connections: ConnectionSource, stats: OutboundStreamStats, onOpened?: (peer: string) => void): boolean {
  const internals = internalsOf(pubsub);
  if (internals === undefined) return false;
  const open = internals.createOutboundStream.bind(pubsub);
  // Per peer, the last opening asked for: a new one waits for it (gossipsub then sees the
  // stream it opened and skips), so a peer never gets two streams from this node.
  const opening = new Map<string, Promise<void>>();
  const openInTurn = (peerId: PeerId, connection: Connection): void => {
    const id = peerId.toString();
    const next = (opening.get(id) ?? Promise.resolve()).then(() => open(peerId, connection)).catch(() => undefined);
    opening.set(id, next);
    void next.then(() => {
      if (opening.get(id) === next) opening.delete(id);
      if (internals.streamsOutbound.has(id)) onOpened?.(id);
    });
  };
  // Gossipsub's queue awaits what this returns: resolving at once lets it hand over the next
  // peer without waiting for this one's round trip.
  internals.createOutboundStream = (peerId: PeerId, connection: Connection): Promise<void> => {
    openInTurn(peerId, connection);
    return Promise.resolve();
  };
  connections.addEventListener('connection:close', (event) => {
    const peerId = event.detail.remotePeer;
    const id = peerId.toString();
    // Gossipsub removes the stream on its own close event, which may come after this one: look
    // once the events of this close have run.
    setImmediate(() => {
      if (internals.streamsOutbound.has(id) || !internals.peers.has(id)) return;
      const remaining = connections.getConnections(peerId).find((c) => c.status === 'open');
      if (remaining === undefined) return;
      stats.gossipStreamsReopened++;
      openInTurn(peerId, remaining);
    });
  });
  return true;
}

/**
 * Hands `connection` to another lashup node to gossipsub, as identify would have: gossipsub adds
 * the peer and opens its outbound stream on it (the remote's gossipsub, seeing that stream,
 * adds this node in turn). Returns false when this gossipsub version lacks the internals.
 */
export function attachGossipPeer(pubsub: object, peerId: PeerId, connection: Connection): boolean {
  const internals = internalsOf(pubsub);
  if (internals === undefined) return false;
  internals.onPeerConnected.call(pubsub, peerId, connection);
  return true;
}

/** Removes `peerId` from gossipsub (its peers, mesh and streams) once no connection to it is left. */
export function detachGossipPeer(pubsub: object, peerId: PeerId): void {
  // Gossipsub ignores a peer it does not hold (a connection it was never told of).
  internalsOf(pubsub)?.onPeerDisconnected.call(pubsub, peerId);
}

/**
 * Makes gossipsub's stop() clear the timer of its next heartbeat, which @libp2p/gossipsub 17
 * leaves behind (it drops the timer with the status it replaces): a stopped node kept its
 * process alive until the timer fired, up to a heartbeat interval (found in a test with a
 * 10-minute interval: its process did not exit after its last assertion until tap's 5-minute
 * limit killed it).
 */
export function clearHeartbeatOnStop(pubsub: object): void {
  const p = pubsub as { stop?: unknown; status?: { heartbeatTimeout?: ReturnType<typeof setTimeout> } };
  if (typeof p.stop !== 'function') return;
  const stop = (p.stop as () => Promise<void>).bind(pubsub);
  p.stop = async (): Promise<void> => {
    // The timer pending now is the last one: once stopping, gossipsub schedules no other.
    const pending = p.status?.heartbeatTimeout;
    try {
      await stop();
    } finally {
      if (pending !== undefined) clearTimeout(pending);
    }
  };
}
