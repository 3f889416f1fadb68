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
import { InboundGate, type GateTicket, type InboundGateStats } from './inbound-gate.js';
import type { Address, OpenCallback, OpenOptions, ReceivedMessage, Stream, StreamTransport } from './transport.js';

/** Largest framed message, in bytes (kv anti-entropy may move a few large states). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

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
   * Gossipsub heartbeat (mesh maintenance, gossip of message ids), in ms. Default 2,000: deltas
   * are flood-published to every subscribed peer, so the mesh only relays what a publisher could
   * not reach itself, and a slower heartbeat halves gossipsub's idle traffic and CPU.
   */
  heartbeatIntervalMs?: number;
  /**
   * Gossipsub mesh degree D (Dlo = D - 1, Dhi = D + 2). Default 3, below gossipsub's 6:
   * publishers flood every delta to each subscriber they are connected to (usually every
   * member), so the mesh mostly relays duplicates, and each duplicate is an encrypted frame
   * and a decode on a busy node. With 57 nodes on 2 cores, D = 6 doubled update latency.
   */
  meshDegree?: number;
  /**
   * Time an inbound connection has to finish the private-network, noise and yamux handshakes,
   * in ms. Default 5,000 (libp2p's is 10,000): members on one network finish in tens of ms
   * even on a loaded machine; a silent connection holds a slot for this long.
   */
  inboundUpgradeTimeoutMs?: number;
  /** Unauthenticated inbound connections one non-member host may hold (see InboundGate). Default 4. */
  perHostPendingInbound?: number;
  /** Unauthenticated inbound connections all non-member hosts together may hold. Default 64. */
  strangerPendingInbound?: number;
  logger?: Logger;
}

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
  received: number;
  /** Admission of unauthenticated inbound connections (per-host and stranger limits). */
  inbound: InboundGateStats;
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
  ]).then(([l, t, n, y, i, g, p, m, pid]) => ({
    createLibp2p: l.createLibp2p,
    tcp: t.tcp,
    noise: n.noise,
    yamux: y.yamux,
    identify: i.identify,
    gossipsub: g.gossipsub,
    preSharedKey: p.preSharedKey,
    multiaddr: m.multiaddr,
    peerIdFromString: pid.peerIdFromString,
  }));
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

function toBytes(data: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

/** Turns a libp2p error into the transport vocabulary. */
export function mapLibp2pError(err: unknown, to: string, protocol: string): TransportError {
  const e = err as { name?: string; message?: string; code?: string };
  const text = `${e.name ?? ''} ${e.code ?? ''} ${e.message ?? String(err)}`;
  const detail = { remote: to, protocol };
  if (/ECONNREFUSED|UnsupportedProtocol|protocol selection failed|not supported/i.test(text)) {
    return new TransportError(TransportErrorCode.ConnectionRefused, `${to} refused ${protocol}: ${e.message ?? text}`, detail, { cause: err });
  }
  if (/Encryption|Crypto|handshake|ECONNRESET|psk|nonce/i.test(text)) {
    return new TransportError(
      TransportErrorCode.HandshakeFailed,
      `libp2p handshake with ${to} failed (${e.message ?? text}): pre-shared key mismatch? Check that both nodes have the same cluster key and label`,
      detail,
      { cause: err },
    );
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

export class Libp2pNode implements StreamTransport {
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
    received: 0,
    inbound: { admitted: 0, refusedPerHost: 0, refusedStrangers: 0, pending: 0 },
  };
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
    libp2p.addEventListener('peer:disconnect', (event) => {
      const peer = event.detail.toString();
      for (const handler of this.disconnectHandlers) handler(peer);
    });
  }

  static async start(options: Libp2pNodeOptions): Promise<Libp2pNode> {
    const mods = await loadModules();
    const { createLibp2p, tcp, noise, yamux, identify, gossipsub, preSharedKey } = mods;
    const mesh = options.meshDegree ?? 3;
    const hosts = { isMember: (_host: string): boolean => false };
    const gate = new InboundGate({
      perHostPending: options.perHostPendingInbound ?? 4,
      strangerPending: options.strangerPendingInbound ?? 64,
      isMemberHost: (host) => hosts.isMember(host),
    });
    const tickets = new WeakMap<object, GateTicket>();
    let libp2p: Libp2p<Services>;
    try {
      libp2p = await createLibp2p({
        privateKey: options.privateKey,
        addresses: { listen: options.listen },
        // The gate decides which unauthenticated connections wait for their handshake; libp2p's
        // own limits only bound the total (its default of 10 in all, 5 per host per second, let a
        // few silent sockets keep new members out).
        connectionManager: {
          maxIncomingPendingConnections: 256,
          inboundUpgradeTimeout: options.inboundUpgradeTimeoutMs ?? 5000,
          inboundConnectionThreshold: 50,
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
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionProtector: preSharedKey({ psk: options.psk }),
        // libp2p pings every connection every 10 s on a new stream (a multistream negotiation
        // and frames each way): with 30 peers that was most of an idle node's CPU. SWIM
        // already watches every member, and yamux keeps connections alive.
        connectionMonitor: { enabled: false },
        services: {
          identify: identify(),
          // Unsigned: every link is already authenticated by the private network and noise,
          // and signing is most of gossipsub's CPU (STACK.md measured 3-5x).
          pubsub: gossipsub({
            globalSignaturePolicy: 'StrictNoSign',
            allowPublishToZeroTopicPeers: true,
            floodPublish: true,
            heartbeatInterval: options.heartbeatIntervalMs ?? 2000,
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
            Dhi: mesh + 2,
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
        const remote = to.startsWith('/') ? (/\/p2p\/([^/]+)$/.exec(to)?.[1] ?? to) : to;
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
   * Dials `to` without a protocol (so gossipsub can mesh over the connection). Errors are counted.
   * When both sides learn of each other at once, only the one with the smaller peer id dials: two
   * connections per pair would double gossipsub's streams and keepalive traffic.
   */
  connect(to: Address): void {
    if (this.stopped) return;
    const remote = /\/p2p\/([^/]+)$/.exec(to)?.[1];
    if (remote !== undefined && remote < this.peerId) return;
    let target;
    try {
      target = this.target(to);
    } catch {
      return;
    }
    this.stats.dials++;
    this.libp2p.dial(target, { signal: AbortSignal.timeout(this.dialTimeoutMs) }).catch((err: unknown) => {
      this.stats.dialFailures++;
      const mapped = mapLibp2pError(err, to, 'connect');
      if (mapped.code === TransportErrorCode.HandshakeFailed) this.stats.handshakeFailures++;
      this.logger?.debug({ peer: to, err: mapped.message }, 'dial failed');
    });
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
    this.stats.published++;
    this.libp2p.services.pubsub.publish(topic, data).catch((err: unknown) => this.logger?.debug({ topic, err: (err as Error).message }, 'publish failed'));
  }

  close(): void {
    void this.stop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.libp2p.stop();
  }
}
