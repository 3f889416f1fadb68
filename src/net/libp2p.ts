/**
 * The libp2p node: TCP, noise, yamux, identify, a private network whose pre-shared key derives
 * from the cluster key, and gossipsub; exposed to the protocols as a `StreamTransport` (framed
 * message streams, so the same code runs on the simulator and here) plus publish/subscribe.
 *
 * Addresses: a multiaddr ending in /p2p/<peer id> (dialable), or a bare peer id (when already
 * connected or known to the peer store); inbound streams report the remote peer id.
 *
 * Failures are mapped to the transport vocabulary: a refused connection (nothing listens: the
 * process is gone) is LASHUP_ERR_NET_CONNECTION_REFUSED, which membership treats as strong
 * evidence of death; a failed handshake is LASHUP_ERR_NET_HANDSHAKE_FAILED with the hint that
 * the cluster key differs, because a pre-shared key mismatch otherwise shows up as a reset or
 * a hang.
 */
import type { noise } from '@chainsafe/libp2p-noise';
import type { yamux } from '@chainsafe/libp2p-yamux';
import type { gossipsub } from '@libp2p/gossipsub';
import type { identify } from '@libp2p/identify';
import type { Connection, PeerId, PrivateKey, Stream as RawStream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Libp2p } from 'libp2p';
import type { Logger } from '../log/index.js';
import { TransportError, TransportErrorCode } from './errors.js';
import { adjustOutboundStreams, attachGossipPeer, clearHeartbeatOnStop, detachGossipPeer, outboundStreamsOf } from './gossipsub-streams.js';
import { InboundGate, type GateTicket, type InboundGateStats } from './inbound-gate.js';
import { libp2pLogger } from './libp2p-logger.js';
import { installPeerStoreShortcut, type PeerStoreLike, type PeerStoreShortcutStats } from './peer-store-shortcut.js';
import type { Address, OpenCallback, OpenOptions, ReceivedMessage, Stream } from './transport.js';
import type { KeepResult, NodeNetwork } from './node-network.js';

/** Largest framed message, in bytes (kv anti-entropy may move a few large states). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/**
 * Time limit of the dial that asks a peer to keep a connection (connection, handshakes and stream
 * negotiation), in ms; the node's default dial limit (dialTimeoutMs, 5 s) holds every other dial.
 * A keep is background work that nothing waits on, and its cost is the handshake: when a node
 * was too busy to finish one in 5 s (a cluster starting at once on shared cores), the keep failed,
 * the peer set chose a replacement at once, and that handshake timed out in turn. In a 60-node
 * formation on this 2-core machine keeps made 749 of 971 failed dials out of 2,505; with this
 * limit 47-86 of 97-180 out of ~1,280, and formation took 48-51 s of CPU instead of 72-90 s
 * (25.6-26.8 s instead of 37-70 s). libp2p's own per-address limit (6 s) still bounds the TCP
 * and handshake part; raising it too made things worse (the remote side's inbound handshake
 * limit then failed them instead).
 */
const KEEP_DIAL_TIMEOUT_MS = 20_000;

export interface Libp2pNodeOptions {
  privateKey: PrivateKey;
  /** Listen multiaddrs, e.g. /ip4/127.0.0.1/tcp/0. */
  listen: string[];
  /** The private-network key file content (see keyring.ts pskFromClusterKey). */
  psk: Uint8Array;
  /** Default time limit of a dial, in ms. Default 5,000. */
  dialTimeoutMs?: number;
  maxFrameBytes?: number;
  /**
   * Gossipsub heartbeat (mesh maintenance, gossip of message ids), in ms. Default 1,000
   * (gossipsub's): the mesh carries every delta beyond the publisher's own connections, and a
   * new node's mesh forms at its first heartbeats.
   */
  heartbeatIntervalMs?: number;
  /**
   * Gossipsub mesh degree D (Dlo = D - 1, Dhi = D + 2; see MESH_SLACK). Default 4, below gossipsub's 6: a node
   * holds about 10 connections (a peer degree of 5 each way); publishers flood each delta to all
   * of them, and every node relays it to its D mesh peers, so a delta reaches 1,000 nodes in
   * about 5 hops (~10 nodes after the publisher's flood, then ~3 new nodes per node per hop:
   * 1 + log3(100)), and each node receives about D copies (one is used; each copy is an
   * encrypted frame and a decode, ~300 bytes for an overlay entry). D = 6 doubled update latency
   * with 57 nodes on 2 cores, through duplicates.
   */
  meshDegree?: number;
  /**
   * Connections libp2p keeps before pruning (a last resort: the peer set and the inbound keep
   * limit bound connections long before). Default 4,096: a master holds one per agent.
   */
  maxConnections?: number;
  /**
   * Time an inbound connection has to finish the private-network, noise and yamux handshakes,
   * in ms. Default 5,000 (libp2p's is 10,000): members on one network finish in tens of ms
   * even on a loaded machine; a silent connection holds a slot for this long.
   */
  inboundUpgradeTimeoutMs?: number;
  /** Unauthenticated inbound connections one non-member host may hold (see InboundGate). Default 4. */
  perHostPendingInbound?: number;
  /** Unauthenticated inbound connections all non-member hosts together may hold. Default 16. */
  strangerPendingInbound?: number;
  /**
   * Unauthenticated inbound connections everyone together may hold. Default 32: about a tenth
   * of a second of handshakes on one core; beyond it a connection is refused at once and its
   * dialer retries, instead of every handshake slowing past its time limit.
   */
  totalPendingInbound?: number;
  /**
   * Kept connections (see `keep`) other nodes may hold to this one, not counting essential ones
   * (an agent keeping its masters). Beyond it a keep is refused and the asker picks another
   * peer, so no node collects connections as the cluster grows. Default 12: with a peer degree
   * of 5 a node has 5 kept connections out and on average 5 in, and more than 12 in is rare
   * (each refusal wastes the asker's handshake), so a node holds at most 17 kept connections.
   */
  maxInboundKeeps?: number;
  /**
   * Interval of the idle-connection check, in ms: a connection without a kept stream and without
   * any stream but gossipsub's and identify's in two checks in a row is closed (the short-lived
   * dials of joins, syncs and repairs). Default 5,000.
   */
  idleCheckIntervalMs?: number;
  /**
   * Messages published while no subscriber of their topic could be sent to (none yet, or none
   * with this node's gossipsub stream open), kept to be published once one can (a node's first
   * updates, written before its first connection, were lost to gossip and waited for
   * anti-entropy). Default 1,000 messages: a starting node's writes with room to spare; older
   * ones are dropped first and counted (outboxDropped).
   */
  maxOutbox?: number;
  logger?: Logger;
}

/** A keep answered (or failed) after longer than this is counted slow (Libp2pStats.keepsSlow), in ms. */
const SLOW_KEEP_MS = 5000;

/**
 * How far a gossipsub mesh may grow above D before the heartbeat prunes it back (Dhi = D +
 * MESH_SLACK; gossipsub's default is Dhi = 2 D). Every mesh peer but the sender gets a copy of
 * each delta a node receives, so the mesh's size is the duplicate count: in the 60-node cluster
 * benchmark (D = 4, ~10 connections per node) meshes filled up to Dhi = 8, and with Dhi = 6 the
 * CPU one update cost the cluster fell from 108 to 99 ms (mean of 4 and 2 runs; Dhi = 5: 95 ms),
 * update-to-all p99 from 107 to 83 ms and idle CPU per node from 0.257 to 0.233 %, with
 * formation times within their run-to-run spread (11-17 s either way). Two above D leaves room
 * for peers grafting in without a prune at every heartbeat.
 */
const MESH_SLACK = 2;

/** The protocol of kept connections: one stream, held open as long as the connection is kept. */
export const KEEP_PROTOCOL = '/lashup/keep/1';

/** Streams that do not keep a connection busy: libp2p's own, always open on every connection. */
const BACKGROUND_PROTOCOL = /^\/(meshsub|floodsub|ipfs\/id|ipfs\/ping)\//;

/** Outcome of asking a peer to keep a connection. */

export interface Libp2pStats {
  dials: number;
  dialFailures: number;
  handshakeFailures: number;
  streamsOpened: number;
  streamsAccepted: number;
  framesSent: number;
  framesReceived: number;
  /** Frames longer than maxFrameBytes: the stream was reset. */
  oversizedFrames: number;
  published: number;
  /**
   * Publishes that reached no peer although one looked ready (its stream closed in between):
   * gossipsub counts the message as seen, so it waits for anti-entropy.
   */
  publishedToNobody: number;
  received: number;
  /** Admission of unauthenticated inbound connections (per-host and stranger limits). */
  inbound: InboundGateStats;
  /** Kept connections asked by this node, now. */
  keepsOut: number;
  /** Kept connections asked by others and accepted, now. */
  keepsIn: number;
  /** Keeps refused by this node (its inbound limit). */
  keepsRefused: number;
  /** Keeps this node asked for (each a dial, or a stream on a connection already open). */
  keepsAsked: number;
  /** Keeps asked that got no answer: the dial failed or timed out, or the stream closed first. */
  keepsFailed: number;
  /** Keeps asked whose answer (or failure) took more than 5 s: a peer, or this node, overloaded. */
  keepsSlow: number;
  /** Idle connections closed (short-lived dials done). */
  idleClosed: number;
  /**
   * Connections opened, both ways, since start: each cost a private-network, noise and yamux
   * handshake at both ends.
   */
  connectionsOpened: number;
  /** Open connections, now. */
  connections: number;
  /** Messages waiting for a subscriber of their topic that gossipsub can send to, now. */
  outbox: number;
  /** Messages dropped from a full outbox. */
  outboxDropped: number;
  /** Gossipsub streams reopened on another connection to their peer (see gossipsub-streams.ts). */
  gossipStreamsReopened: number;
  /** libp2p's per-stream peer-store writes answered from memory, and those that ran (see peer-store-shortcut.ts). */
  peerStoreShortcut: PeerStoreShortcutStats;
}

type Services = {
  identify: ReturnType<ReturnType<typeof identify>>;
  pubsub: ReturnType<ReturnType<typeof gossipsub>>;
};

/** libp2p's modules, loaded when the first node starts: importing src/net stays cheap for the pure cores. */
interface Libp2pModules {
  createLibp2p: typeof import('libp2p').createLibp2p;
  tcp: typeof import('@libp2p/tcp').tcp;
  noise: typeof noise;
  yamux: typeof yamux;
  identify: typeof identify;
  gossipsub: typeof gossipsub;
  preSharedKey: typeof import('@libp2p/pnet').preSharedKey;
  multiaddr: typeof import('@multiformats/multiaddr').multiaddr;
  peerIdFromString: typeof import('@libp2p/peer-id').peerIdFromString;
  noiseCrypto: typeof import('./noise-crypto.js').fastNoiseCrypto;
}

let modules: Promise<Libp2pModules> | undefined;

function loadModules(): Promise<Libp2pModules> {
  modules ??= Promise.all([
    import('libp2p'),
    import('@libp2p/tcp'),
    import('@chainsafe/libp2p-noise'),
    import('@chainsafe/libp2p-yamux'),
    import('@libp2p/identify'),
    import('@libp2p/gossipsub'),
    import('@libp2p/pnet'),
    import('@multiformats/multiaddr'),
    import('@libp2p/peer-id'),
    import('./noise-crypto.js'),
    import('@chainsafe/libp2p-yamux/stream'),
    import('./yamux-window.js'),
    import('@libp2p/utils'),
    import('./length-prefix-decoder.js'),
  ]).then(([l, t, n, y, i, g, p, m, pid, nc, ys, yw, u, lp]) => {
    yw.installYamuxWindowHysteresis(ys.YamuxStream, ys.StreamState.Established);
    lp.installQuietLengthPrefix(u.LengthPrefixedDecoder);
    return {
      createLibp2p: l.createLibp2p,
      tcp: t.tcp,
      noise: n.noise,
      yamux: y.yamux,
      identify: i.identify,
      gossipsub: g.gossipsub,
      preSharedKey: p.preSharedKey,
      multiaddr: m.multiaddr,
      peerIdFromString: pid.peerIdFromString,
      noiseCrypto: nc.fastNoiseCrypto,
    };
  });
  return modules;
}

/** Two 32-bit FNV-1a style hashes of `data`, as an 8-byte gossipsub message id. */
export function fastMessageId(data: Uint8Array): Uint8Array {
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c;
  for (let i = 0; i < data.length; i++) {
    const b = data[i] as number;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
  }
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, h1 >>> 0);
  view.setUint32(4, (h2 ^ data.length) >>> 0);
  return out;
}

/**
 * The peer id in `address`: the last `/p2p/<id>` component of a multiaddr, or `address` itself
 * when it is already a bare peer id (the node network's addresses may be either).
 */
function peerIdOf(address: Address): string {
  return /\/p2p\/([^/]+)$/.exec(address)?.[1] ?? address;
}

function toBytes(data: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

/**
 * The names, codes and messages of an error and its causes (libp2p wraps the timeout or reset
 * that ended a handshake in an error of its own, which says only "Encryption failed"), at most
 * five deep.
 */
function errorChainText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const e = current as { name?: string; message?: string; code?: string; cause?: unknown };
    parts.push(`${e.name ?? ''} ${e.code ?? ''} ${e.message ?? String(current)}`);
    current = typeof current === 'object' ? e.cause : undefined;
  }
  return parts.join(' | ');
}

/** Turns a libp2p error into the transport vocabulary. */
export function mapLibp2pError(err: unknown, to: string, protocol: string): TransportError {
  const e = err as { name?: string; message?: string; code?: string };
  const text = errorChainText(err);
  const detail = { remote: to, protocol };
  if (/ECONNREFUSED|UnsupportedProtocol|protocol selection failed|not supported/i.test(text)) {
    return new TransportError(TransportErrorCode.ConnectionRefused, `${to} refused ${protocol}: ${e.message ?? text}`, detail, { cause: err });
  }
  if (/Encryption|Crypto|handshake|ECONNRESET|psk|nonce/i.test(text)) {
    // A key mismatch and an overloaded peer can look alike from here: with another key the peer
    // reads noise's first message as garbage and closes, and an overloaded peer closes too when
    // its own time for the handshake runs out (a 200-node cluster starting on two cores logged
    // dozens of these, each said to be a key mismatch). Name both where both fit.
    const cause = /abort|timeout|timed out/i.test(text)
      ? 'pre-shared key mismatch? (or the peer is overloaded: the handshake timed out) Check that both nodes have the same cluster key and label'
      : /ECONNRESET|end of (input|stream)|ended|closed|reset/i.test(text)
        ? "pre-shared key mismatch? (or an overloaded peer: it closed the connection during the handshake, which it also does when its time for one runs out) Check that both nodes have the same cluster key and label, and the peer's load"
        : 'pre-shared key mismatch? Check that both nodes have the same cluster key and label';
    return new TransportError(TransportErrorCode.HandshakeFailed, `libp2p handshake with ${to} failed (${e.message ?? text}): ${cause}`, detail, { cause: err });
  }
  if (/abort|timeout|timed out/i.test(text)) {
    return new TransportError(
      TransportErrorCode.Timeout,
      `no answer from ${to} for ${protocol} in time (${e.message ?? text}): unreachable, or a pre-shared key mismatch? (a private network with another key hangs instead of refusing)`,
      detail,
      { cause: err },
    );
  }
  return new TransportError(TransportErrorCode.ConnectionReset, `stream to ${to} for ${protocol} failed: ${e.message ?? text}`, detail, { cause: err });
}

/** A framed message stream over a libp2p stream: [length u32 BE][payload]. */
class FramedStream implements Stream {
  private handler: ((message: ReceivedMessage) => void) | undefined;
  private closeHandler: ((error: TransportError | undefined) => void) | undefined;
  private backlog: Uint8Array[] = [];
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private open = true;
  private closedWith: { error: TransportError | undefined } | undefined;

  constructor(
    private readonly raw: RawStream,
    readonly protocol: string,
    readonly localAddress: Address,
    readonly remoteAddress: Address,
    private readonly maxFrameBytes: number,
    private readonly stats: Libp2pStats,
  ) {
    raw.addEventListener('message', (event) => this.onData(toBytes(event.data)));
    raw.addEventListener('close', (event) => {
      const error = (event as { error?: Error }).error;
      this.finish(error === undefined ? undefined : mapLibp2pError(error, remoteAddress, protocol));
    });
    raw.addEventListener('remoteCloseWrite', () => this.close());
  }

  get isOpen(): boolean {
    return this.open;
  }

  send(data: Uint8Array): boolean {
    if (!this.open) return false;
    const frame = new Uint8Array(4 + data.byteLength);
    new DataView(frame.buffer).setUint32(0, data.byteLength);
    frame.set(data, 4);
    this.stats.framesSent++;
    try {
      this.raw.send(frame);
    } catch (err) {
      this.finish(mapLibp2pError(err, this.remoteAddress, this.protocol));
      return false;
    }
    return true;
  }

  private onData(chunk: Uint8Array): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    for (;;) {
      if (this.pendingBytes < 4) return;
      const head = this.peek(4);
      const length = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
      if (length > this.maxFrameBytes) {
        this.stats.oversizedFrames++;
        this.raw.abort(new Error(`frame of ${length} bytes exceeds ${this.maxFrameBytes}`));
        this.finish(new TransportError(TransportErrorCode.ConnectionReset, `${this.remoteAddress} sent a frame of ${length} bytes on ${this.protocol}, above ${this.maxFrameBytes}`));
        return;
      }
      if (this.pendingBytes < 4 + length) return;
      const frame = this.peek(4 + length).slice(4);
      this.consume(4 + length);
      this.stats.framesReceived++;
      if (this.handler === undefined) this.backlog.push(frame);
      else this.handler({ data: frame, receivedAtMs: performance.now() });
    }
  }

  /** The first `n` pending bytes, joined when they span chunks. */
  private peek(n: number): Uint8Array {
    const first = this.pending[0] as Uint8Array;
    if (first.byteLength >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const chunk of this.pending) {
      const take = Math.min(chunk.byteLength, n - at);
      out.set(chunk.subarray(0, take), at);
      at += take;
      if (at === n) break;
    }
    return out;
  }

  private consume(n: number): void {
    this.pendingBytes -= n;
    while (n > 0) {
      const first = this.pending[0] as Uint8Array;
      if (first.byteLength <= n) {
        this.pending.shift();
        n -= first.byteLength;
      } else {
        this.pending[0] = first.subarray(n);
        n = 0;
      }
    }
  }

  onMessage(handler: (message: ReceivedMessage) => void): void {
    this.handler = handler;
    const queued = this.backlog;
    this.backlog = [];
    for (const data of queued) handler({ data, receivedAtMs: performance.now() });
  }

  onClose(handler: (error: TransportError | undefined) => void): void {
    this.closeHandler = handler;
    if (this.closedWith !== undefined) handler(this.closedWith.error);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.raw.close().catch(() => this.raw.abort(new Error('close failed')));
    this.finish(undefined);
  }

  private finish(error: TransportError | undefined): void {
    this.open = false;
    if (this.closedWith !== undefined) return;
    this.closedWith = { error };
    this.closeHandler?.(error);
  }
}

/**
 * A TCP socket without traffic either way for this long is closed (@libp2p/tcp's own default,
 * two minutes, set here so the keep-alive below is tied to it).
 */
const SOCKET_INACTIVITY_TIMEOUT_MS = 120_000;
/**
 * Yamux pings every connection, from both ends, this often, so that an idle kept connection is
 * never closed by the inactivity timeout above; that is all the pings are for (an unanswered ping
 * closes nothing in this yamux: failures are SWIM's to find). Yamux's default, every 30 s, cost
 * ~8 % of an idle one-node process's JavaScript time in a profile of the 60-node cluster
 * benchmark (a ping and a pong through noise and TCP per connection, ~10 connections). Every
 * 100 s leaves 20 s for a late timer.
 */
const KEEP_ALIVE_INTERVAL_MS = SOCKET_INACTIVITY_TIMEOUT_MS - 20_000;

export class Libp2pNode implements NodeNetwork {
  readonly stats: Libp2pStats = {
    dials: 0,
    dialFailures: 0,
    handshakeFailures: 0,
    streamsOpened: 0,
    streamsAccepted: 0,
    framesSent: 0,
    framesReceived: 0,
    oversizedFrames: 0,
    published: 0,
    publishedToNobody: 0,
    received: 0,
    inbound: { admitted: 0, refusedPerHost: 0, refusedStrangers: 0, refusedBusy: 0, pending: 0, expired: 0 },
    keepsOut: 0,
    keepsIn: 0,
    keepsRefused: 0,
    keepsAsked: 0,
    keepsFailed: 0,
    keepsSlow: 0,
    idleClosed: 0,
    connectionsOpened: 0,
    connections: 0,
    outbox: 0,
    outboxDropped: 0,
    gossipStreamsReopened: 0,
    peerStoreShortcut: { skipped: 0, merged: 0 },
  };
  private readonly keepsOut = new Map<string, Stream>();
  private readonly keepsIn = new Set<Stream>();
  private readonly idleSeen = new Set<string>();
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly outbox: { topic: string; data: Uint8Array }[] = [];
  private readonly maxInboundKeeps: number;
  private readonly maxOutbox: number;
  private readonly maxFrameBytes: number;
  private readonly dialTimeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly topicHandlers = new Map<string, (data: Uint8Array, from: string) => void>();
  private readonly disconnectHandlers = new Set<(peerId: string) => void>();
  private stopped = false;

  private constructor(
    readonly libp2p: Libp2p<Services>,
    options: Libp2pNodeOptions,
    private readonly mods: Libp2pModules,
    gate: InboundGate,
    private readonly hosts: { isMember: (host: string) => boolean },
  ) {
    this.stats.inbound = gate.stats;
    this.maxInboundKeeps = options.maxInboundKeeps ?? 12;
    this.maxOutbox = options.maxOutbox ?? 1000;
    this.handle(KEEP_PROTOCOL, (stream) => this.acceptKeep(stream));
    this.stats.peerStoreShortcut = installPeerStoreShortcut(libp2p.peerStore as unknown as PeerStoreLike);
    clearHeartbeatOnStop(libp2p.services.pubsub);
    if (!adjustOutboundStreams(libp2p.services.pubsub, libp2p, this.stats, () => this.flushOutbox()))
      options.logger?.warn({}, 'this gossipsub version lacks the internals gossipsub-streams.ts adjusts: its outbound streams open one at a time and are not reopened');
    // A subscriber becomes reachable when its subscription arrives or when this node's own
    // stream to it opens (adjustOutboundStreams reports it; with a gossipsub that lacks the
    // internals, the heartbeat, every second, notices it). Past bug: a new agent's entry,
    // published the moment its lease came, waited for the heartbeat in 2 of 4 joins traced in
    // the 16-agent e2e bench (140 and 340 ms), while its streams to the masters were opening.
    libp2p.services.pubsub.addEventListener('subscription-change', () => this.flushOutbox());
    libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', () => this.flushOutbox());
    this.idleTimer = setInterval(() => this.closeIdle(), options.idleCheckIntervalMs ?? 5000);
    this.idleTimer.unref();
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.dialTimeoutMs = options.dialTimeoutMs ?? 5000;
    this.logger = options.logger;
    libp2p.services.pubsub.addEventListener('message', (event) => {
      const message = event.detail;
      const handler = this.topicHandlers.get(message.topic);
      if (handler === undefined) return;
      this.stats.received++;
      handler(message.data, message.type === 'signed' ? message.from.toString() : 'unknown');
    });
    libp2p.addEventListener('connection:open', () => {
      this.stats.connectionsOpened++;
    });
    libp2p.addEventListener('peer:disconnect', (event) => {
      detachGossipPeer(libp2p.services.pubsub, event.detail);
      const peer = event.detail.toString();
      for (const handler of this.disconnectHandlers) handler(peer);
    });
  }

  static async start(options: Libp2pNodeOptions): Promise<Libp2pNode> {
    const mods = await loadModules();
    const { createLibp2p, tcp, noise, yamux, identify, gossipsub, preSharedKey, noiseCrypto } = mods;
    const mesh = options.meshDegree ?? 4;
    const hosts = { isMember: (_host: string): boolean => false };
    const gate = new InboundGate({
      perHostPending: options.perHostPendingInbound ?? 4,
      strangerPending: options.strangerPendingInbound ?? 16,
      totalPending: options.totalPendingInbound ?? 32,
      isMemberHost: (host) => hosts.isMember(host),
      maxPendingMs: (options.inboundUpgradeTimeoutMs ?? 5000) + 1000,
      nowMs: () => performance.now(),
    });
    const tickets = new WeakMap<object, GateTicket>();
    const quietLogger = libp2pLogger(process.env['DEBUG']);
    let libp2p: Libp2p<Services>;
    try {
      libp2p = await createLibp2p({
        privateKey: options.privateKey,
        addresses: { listen: options.listen },
        ...(quietLogger === undefined ? {} : { logger: quietLogger }),
        // The gate decides which unauthenticated connections wait for their handshake; libp2p's
        // own limits only bound the total (its default of 10 in all let a few silent sockets keep
        // new members out). Its per-host rate limit is off: it cannot tell members from
        // strangers, and members behind one address (several nodes per host, a cluster on
        // loopback) were refused at formation and retried a second later, and again.
        connectionManager: {
          maxConnections: options.maxConnections ?? 4096,
          maxIncomingPendingConnections: 256,
          inboundUpgradeTimeout: options.inboundUpgradeTimeoutMs ?? 5000,
          inboundConnectionThreshold: 1_000_000,
        },
        connectionGater: {
          denyInboundConnection: (maConn) => {
            const host = /^\/ip[46]\/([^/]+)\//.exec(maConn.remoteAddr.toString())?.[1] ?? maConn.remoteAddr.toString();
            const ticket = gate.admit(host);
            if (ticket === undefined) return true;
            tickets.set(maConn, ticket);
            maConn.addEventListener('close', () => gate.settle(ticket), { once: true });
            return false;
          },
          denyInboundEncryptedConnection: (_peer, maConn) => {
            // Past the private network and noise: authenticated, its slot is free.
            const ticket = tickets.get(maConn);
            if (ticket !== undefined) gate.settle(ticket);
            return false;
          },
        },
        transports: [tcp({ inboundSocketInactivityTimeout: SOCKET_INACTIVITY_TIMEOUT_MS, outboundSocketInactivityTimeout: SOCKET_INACTIVITY_TIMEOUT_MS })],
        connectionEncrypters: [noise({ crypto: noiseCrypto })],
        streamMuxers: [yamux({ keepAliveInterval: KEEP_ALIVE_INTERVAL_MS })],
        connectionProtector: preSharedKey({ psk: options.psk }),
        // libp2p pings every connection every 10 s on a new stream (a multistream negotiation
        // and frames each way): with 30 peers that was most of an idle node's CPU. SWIM
        // already watches every member, and yamux keeps connections alive.
        connectionMonitor: { enabled: false },
        services: {
          // Identify runs on no connection by itself: most connections are short-lived (a join, a
          // sync, a repair, a probe's fallback), and identify's exchange, the peer-store writes it
          // makes and the gossipsub streams it leads to were half of such a connection's CPU
          // (two nodes, 150 connections with one round trip each: 30.2 ms per connection with it,
          // 16.8 ms without, both ends). Gossipsub is told of kept connections instead (see
          // attachGossip); the service stays so that other nodes can still identify this one.
          identify: identify({ runOnConnectionOpen: false }),
          // Unsigned: every link is already authenticated by the private network and noise,
          // and signing is most of gossipsub's CPU (STACK.md measured 3-5x).
          pubsub: gossipsub({
            globalSignaturePolicy: 'StrictNoSign',
            allowPublishToZeroTopicPeers: true,
            floodPublish: true,
            heartbeatInterval: options.heartbeatIntervalMs ?? 1000,
            // No IP colocation penalty: every peer is already admitted by the private network,
            // and many nodes share an address on one host, behind NAT or in tests on loopback.
            // With the default (-5 per peer above 10 on one IP, squared) 30 nodes on 127.0.0.1
            // graylisted one another and no delta was delivered at all.
            scoreParams: { IPColocationFactorWeight: 0 },
            // Message ids from a 64-bit hash of the payload, not SHA-256: every delta carries a
            // fresh dot, so payloads never repeat, and hashing was a visible part of each hop.
            msgIdFn: (message: { data: Uint8Array }) => fastMessageId(message.data),
            D: mesh,
            Dlo: Math.max(1, mesh - 1),
            Dhi: mesh + MESH_SLACK,
            Dlazy: mesh,
          }),
        },
      });
    } catch (err) {
      throw new TransportError(TransportErrorCode.BindFailed, `cannot start libp2p on ${options.listen.join(', ')}: ${(err as Error).message}`, { listen: options.listen }, { cause: err });
    }
    return new Libp2pNode(libp2p, options, mods, gate, hosts);
  }

  /**
   * Tells the inbound gate which remote hosts belong to members (their connections are never
   * refused before authentication). Called by the node runtime with a membership lookup.
   */
  setMemberHosts(isMember: (host: string) => boolean): void {
    this.hosts.isMember = isMember;
  }

  get peerId(): string {
    return this.libp2p.peerId.toString();
  }

  /** Listen multiaddrs, each ending in /p2p/<peer id>. */
  get multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((m) => m.toString());
  }

  get localAddress(): Address {
    return this.multiaddrs[0] ?? this.peerId;
  }

  private target(to: Address): Multiaddr | PeerId {
    try {
      return to.startsWith('/') ? this.mods.multiaddr(to) : this.mods.peerIdFromString(to);
    } catch (err) {
      throw new TransportError(TransportErrorCode.InvalidAddress, `${JSON.stringify(to)} is neither a multiaddr nor a peer id`, { address: to }, { cause: err });
    }
  }

  private wrap(raw: RawStream, connection: Connection, protocol: string): Stream {
    return new FramedStream(raw, protocol, this.peerId, connection.remotePeer.toString(), this.maxFrameBytes, this.stats);
  }

  handle(protocol: string, handler: (stream: Stream) => void): void {
    void this.libp2p
      .handle(
        protocol,
        (raw, connection) => {
          this.stats.streamsAccepted++;
          handler(this.wrap(raw, connection, protocol));
        },
        { maxInboundStreams: 256, force: true },
      )
      .catch((err: unknown) => this.logger?.error({ protocol, err: (err as Error).message }, 'cannot register a libp2p protocol'));
  }

  unhandle(protocol: string): void {
    void this.libp2p.unhandle(protocol).catch(() => undefined);
  }

  open(to: Address, protocol: string, callback: OpenCallback, options: OpenOptions = {}): () => void {
    const controller = new AbortController();
    let settled = false;
    const timeoutMs = options.timeoutMs ?? this.dialTimeoutMs;
    const timer = setTimeout(() => controller.abort(new Error(`dial timed out after ${timeoutMs} ms`)), timeoutMs);
    let target;
    try {
      target = this.target(to);
    } catch (err) {
      clearTimeout(timer);
      queueMicrotask(() => callback(err as TransportError));
      return () => undefined;
    }
    this.stats.dials++;
    this.libp2p
      .dialProtocol(target, protocol, { signal: controller.signal })
      .then((raw) => {
        clearTimeout(timer);
        if (settled) {
          raw.abort(new Error('abandoned'));
          return;
        }
        settled = true;
        this.stats.streamsOpened++;
        const remote = peerIdOf(to);
        callback(null, new FramedStream(raw, protocol, this.peerId, remote, this.maxFrameBytes, this.stats));
      })
      .catch((err: unknown) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        this.stats.dialFailures++;
        const mapped = mapLibp2pError(err, to, protocol);
        if (mapped.code === TransportErrorCode.HandshakeFailed) this.stats.handshakeFailures++;
        callback(mapped);
      });
    return () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      controller.abort(new Error('abandoned by the caller'));
    };
  }

  /**
   * Asks `to` (a dialable multiaddr ending in /p2p/<peer id>) to keep a connection with this
   * node: a stream of KEEP_PROTOCOL held open for as long as the connection is kept. `essential`
   * keeps (an agent and its masters) are never refused; others are when the remote already
   * holds its maximum of inbound keeps. `onLost` runs once if an accepted keep later closes
   * (the peer went away, or released it). One keep per peer.
   */
  keep(to: Address, essential: boolean, onLost: () => void, callback: (result: KeepResult) => void): void {
    const peer = peerIdOf(to);
    if (this.stopped || this.keepsOut.has(peer)) {
      queueMicrotask(() => callback(this.stopped ? 'failed' : 'kept'));
      return;
    }
    this.stats.keepsAsked++;
    const askedAtMs = performance.now();
    const settle = (result: KeepResult): void => {
      if (result === 'failed') this.stats.keepsFailed++;
      if (performance.now() - askedAtMs > SLOW_KEEP_MS) this.stats.keepsSlow++;
      callback(result);
    };
    this.open(
      to,
      KEEP_PROTOCOL,
      (error, stream) => {
        if (error !== null || stream === undefined) {
          settle('failed');
          return;
        }
        let answered = false;
        stream.onMessage(({ data }) => {
          if (answered) return;
          answered = true;
          if (data[0] !== 1 || this.stopped) {
            stream.close();
            settle('refused');
            return;
          }
          this.keepsOut.set(peer, stream);
          this.stats.keepsOut = this.keepsOut.size;
          this.attachGossip(peer);
          settle('kept');
        });
        stream.onClose(() => {
          if (!answered) {
            answered = true;
            settle('failed');
            return;
          }
          if (this.keepsOut.get(peer) !== stream) return;
          this.keepsOut.delete(peer);
          this.stats.keepsOut = this.keepsOut.size;
          onLost();
        });
        stream.send(Uint8Array.of(essential ? 1 : 0));
      },
      { timeoutMs: KEEP_DIAL_TIMEOUT_MS },
    );
  }

  /**
   * Hands the connection that carries a keep with `peer` (a peer id) to gossipsub, at both ends
   * as soon as the keep is agreed: both are lashup nodes, so the peer speaks gossipsub, and
   * nothing waits on an identify round trip. Measured against running identify on kept
   * connections instead: that made a 200-node formation spread its keys ~40 s later, because
   * an overloaded peer answered identify late and gossip waited for it.
   */
  private attachGossip(peer: string): void {
    let peerId: PeerId;
    try {
      peerId = this.mods.peerIdFromString(peer);
    } catch {
      return;
    }
    const open = this.libp2p.getConnections(peerId).filter((c) => c.status === 'open');
    const connection = open.find((c) => c.streams.some((s) => s.protocol === KEEP_PROTOCOL)) ?? open[0];
    if (connection === undefined) return;
    if (attachGossipPeer(this.libp2p.services.pubsub, peerId, connection)) return;
    // A gossipsub without the internals: identify, and the registrar tells gossipsub.
    this.libp2p.services.identify.identify(connection).catch((err: unknown) => this.logger?.debug({ peer, err: (err as Error).message }, 'identify failed'));
  }

  /** Stops keeping the connection to `peer` (a peer id or an address ending in /p2p/<id>); the idle check closes it. */
  release(peer: Address): void {
    const id = peerIdOf(peer);
    const stream = this.keepsOut.get(id);
    if (stream === undefined) return;
    this.keepsOut.delete(id);
    this.stats.keepsOut = this.keepsOut.size;
    stream.close();
  }

  private acceptKeep(stream: Stream): void {
    let decided = false;
    stream.onMessage(({ data }) => {
      if (decided) return;
      decided = true;
      const essential = data[0] === 1;
      if (!essential && this.keepsIn.size >= this.maxInboundKeeps) {
        this.stats.keepsRefused++;
        stream.send(Uint8Array.of(0));
        stream.close();
        return;
      }
      this.keepsIn.add(stream);
      this.stats.keepsIn = this.keepsIn.size;
      stream.send(Uint8Array.of(1));
      this.attachGossip(stream.remoteAddress);
    });
    stream.onClose(() => {
      if (this.keepsIn.delete(stream)) this.stats.keepsIn = this.keepsIn.size;
    });
  }

  /**
   * Closes connections that carried nothing but libp2p's own streams in two checks in a row:
   * the short-lived dials of joins, syncs, repairs and probes, once they are done. A kept
   * connection carries a keep stream and is never idle.
   */
  private closeIdle(): void {
    if (this.stopped) return;
    const connections = this.libp2p.getConnections();
    this.stats.connections = connections.length;
    const seen = new Set<string>();
    for (const connection of connections) {
      const id = connection.id;
      const busy = connection.streams.some((stream) => !BACKGROUND_PROTOCOL.test(stream.protocol ?? ''));
      if (busy) continue;
      seen.add(id);
      if (!this.idleSeen.has(id)) continue;
      this.stats.idleClosed++;
      connection.close().catch(() => connection.abort(new Error('idle close failed')));
    }
    this.idleSeen.clear();
    for (const id of seen) this.idleSeen.add(id);
  }

  isConnected(to: Address): boolean {
    const id = peerIdOf(to);
    return this.libp2p.getPeers().some((p) => p.toString() === id);
  }

  /** Peers with an open connection. */
  connectedPeers(): string[] {
    return this.libp2p.getPeers().map((p) => p.toString());
  }

  onPeerDisconnected(handler: (peerId: string) => void): () => void {
    this.disconnectHandlers.add(handler);
    return () => this.disconnectHandlers.delete(handler);
  }

  subscribe(topic: string, handler: (data: Uint8Array, from: string) => void): void {
    this.topicHandlers.set(topic, handler);
    this.libp2p.services.pubsub.subscribe(topic);
  }

  publish(topic: string, data: Uint8Array): void {
    if (this.stopped) return;
    // Held, not published, while no subscriber can be sent to: gossipsub remembers a published
    // message as seen and refuses to publish the same bytes again, so a message sent to no one
    // is lost to gossip.
    if (!this.canDeliver(topic)) {
      this.hold(topic, data);
      return;
    }
    this.stats.published++;
    this.libp2p.services.pubsub.publish(topic, data).then(
      (result) => {
        if (result.recipients.length === 0) this.stats.publishedToNobody++;
      },
      (err: unknown) => this.logger?.debug({ topic, err: (err as Error).message }, 'publish failed'),
    );
  }

  /**
   * Whether gossipsub can send a message of `topic` to anyone now: a subscriber to which this
   * node's own gossipsub stream is open. A subscriber alone is not enough: its subscription
   * arrives on its stream to this node, and gossipsub drops a send to a peer whose stream from
   * this node is not open yet, without an error. Past bug: in a 60-node formation most nodes'
   * first write (held until a first subscriber) went to such a peer and reached no one; each
   * waited 6-10 s for anti-entropy, the last part of the formation.
   */
  private canDeliver(topic: string): boolean {
    const pubsub = this.libp2p.services.pubsub;
    const subscribers = pubsub.getSubscribers(topic);
    if (subscribers.length === 0) return false;
    const outbound = outboundStreamsOf(pubsub);
    // A gossipsub version without the map: subscribers are the best this node can tell.
    if (outbound === undefined) return true;
    return subscribers.some((peer) => outbound.has(peer.toString()));
  }

  /** Keeps a message that could reach nobody, to publish once a subscriber of its topic can be sent to. */
  private hold(topic: string, data: Uint8Array): void {
    this.outbox.push({ topic, data });
    while (this.outbox.length > this.maxOutbox) {
      this.outbox.shift();
      this.stats.outboxDropped++;
    }
    this.stats.outbox = this.outbox.length;
  }

  private flushOutbox(): void {
    if (this.outbox.length === 0 || this.stopped) return;
    const ready = this.outbox.filter((m) => this.canDeliver(m.topic));
    if (ready.length === 0) return;
    for (const m of ready) this.outbox.splice(this.outbox.indexOf(m), 1);
    this.stats.outbox = this.outbox.length;
    for (const m of ready) this.publish(m.topic, m.data);
  }

  close(): void {
    void this.stop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.idleTimer !== undefined) clearInterval(this.idleTimer);
    await this.libp2p.stop();
  }
}
