/**
 * A simulated network between hosts, in virtual time.
 *
 * Two channels, as on a real network:
 * - packets: best effort, like UDP. Per directed link: a latency model, loss, duplication and
 *   reordering. Partitions and crashed receivers drop packets.
 * - streams: reliable and ordered, like TCP. Messages are never lost or reordered; a "lost"
 *   message is delivered late (a retransmission delay) instead. A stream breaks, on both ends,
 *   when a message is sent across a partition or when either host crashes.
 *
 * Hosts crash and restart. A crash cancels every timer of the host's clock, forgets its handlers
 * and breaks its streams; nothing is delivered to it until it restarts. A restart starts a new
 * epoch with a fresh clock and calls the host's boot function again, as a process restart would:
 * whatever the node persisted must be kept by the test outside the host.
 *
 * Determinism: every random draw comes from one seeded generator per network, in event order, and
 * every delivery is mixed into the scheduler's trace digest.
 */
import { InvalidArgumentError, type Rng } from '../common/index.js';
import { sampleLatencyMs, validateLatencyModel, type LatencyModel } from './latency.js';
import { ScopedClock, type Scheduler } from './scheduler.js';

export type SimAddress = string;

export interface LinkConfig {
  /** One-way delay of each packet or stream message. */
  latency: LatencyModel;
  /** Probability in [0, 1] that a packet is dropped (for streams: delivered one retransmission late). */
  lossProbability: number;
  /** Probability in [0, 1] that a packet is delivered twice (each copy with its own latency). */
  duplicateProbability: number;
  /** Probability in [0, 1] that a packet is held back by up to `reorderDelayMs` extra. */
  reorderProbability: number;
  /** Maximum extra delay of a reordered packet, in milliseconds. */
  reorderDelayMs: number;
}

export interface NetworkOptions {
  /** Link behaviour wherever no override applies. Default: 0.5 ms constant, no impairment. */
  defaultLink?: Partial<LinkConfig>;
  /** Extra delay of a stream message that the link "lost", in milliseconds. Default 200 (a TCP minimum RTO). */
  streamRetransmitDelayMs?: number;
  /** Time after which a stream connect across a partition fails, in milliseconds. Default 1000. */
  connectTimeoutMs?: number;
  /** Time for a stream end to notice its peer is unreachable, in milliseconds. Default 1000. */
  streamBreakDetectMs?: number;
}

/** Why a stream failed; the transport layer maps these to typed errors. */
export type StreamFailure = 'refused' | 'timeout' | 'reset' | 'unknown-host';

export interface HostCounters {
  packetsSent: number;
  bytesSent: number;
  packetsReceived: number;
  bytesReceived: number;
  /** Packets this host sent that the link dropped (loss). */
  packetsLost: number;
  /** Packets this host sent that a partition dropped. */
  packetsBlocked: number;
  /** Packets addressed to this host that arrived while it was down. */
  packetsDroppedWhileDown: number;
  /** Packets that arrived while no handler was registered. */
  packetsUnhandled: number;
  streamMessagesSent: number;
  streamBytesSent: number;
  streamMessagesReceived: number;
  streamBytesReceived: number;
  streamsOpened: number;
  streamsBroken: number;
}

export type PacketHandler = (from: SimAddress, data: Uint8Array, receivedAtMs: number) => void;
export type StreamHandler = (stream: SimStreamEnd) => void;
export type ConnectCallback = (err: StreamFailure | null, stream?: SimStreamEnd) => void;

const DEFAULT_LINK: LinkConfig = {
  latency: { kind: 'constant', ms: 0.5 },
  lossProbability: 0,
  duplicateProbability: 0,
  reorderProbability: 0,
  reorderDelayMs: 0,
};

function zeroCounters(): HostCounters {
  return {
    packetsSent: 0,
    bytesSent: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    packetsLost: 0,
    packetsBlocked: 0,
    packetsDroppedWhileDown: 0,
    packetsUnhandled: 0,
    streamMessagesSent: 0,
    streamBytesSent: 0,
    streamMessagesReceived: 0,
    streamBytesReceived: 0,
    streamsOpened: 0,
    streamsBroken: 0,
  };
}

function checkProbability(path: string, value: number): void {
  if (!(value >= 0 && value <= 1)) {
    throw new InvalidArgumentError(`${path} = ${String(value)} is not a probability; expected a number in [0, 1]`, {
      path,
      value,
    });
  }
}

export function validateLinkConfig(config: LinkConfig, path = 'link'): void {
  validateLatencyModel(config.latency, `${path}.latency`);
  checkProbability(`${path}.lossProbability`, config.lossProbability);
  checkProbability(`${path}.duplicateProbability`, config.duplicateProbability);
  checkProbability(`${path}.reorderProbability`, config.reorderProbability);
  if (!(Number.isFinite(config.reorderDelayMs) && config.reorderDelayMs >= 0)) {
    throw new InvalidArgumentError(`${path}.reorderDelayMs = ${String(config.reorderDelayMs)} is not valid; expected a finite number >= 0`, {
      path: `${path}.reorderDelayMs`,
      value: config.reorderDelayMs,
    });
  }
}

export class SimNetwork {
  private readonly hostsByAddress = new Map<SimAddress, SimHost>();
  private readonly hostList: SimHost[] = [];
  private defaultLink: LinkConfig;
  /** Directed overrides: key `${fromId}>${toId}`, with -1 standing for "any host". */
  private readonly linkOverrides = new Map<string, LinkConfig>();
  /** Partition zone per host id (0 = not in any listed side). */
  private zones: Int32Array = new Int32Array(0);
  /** Blocked directed zone pairs, key fromZone * 65536 + toZone. */
  private readonly blockedZones = new Set<number>();
  readonly streamRetransmitDelayMs: number;
  readonly connectTimeoutMs: number;
  readonly streamBreakDetectMs: number;
  private nextStreamId = 1;

  constructor(
    readonly scheduler: Scheduler,
    private readonly rng: Rng,
    options: NetworkOptions = {},
  ) {
    this.defaultLink = { ...DEFAULT_LINK, ...options.defaultLink };
    validateLinkConfig(this.defaultLink, 'defaultLink');
    this.streamRetransmitDelayMs = options.streamRetransmitDelayMs ?? 200;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.streamBreakDetectMs = options.streamBreakDetectMs ?? 1000;
  }

  /**
   * Adds a host. `boot`, when given, runs now and again after every restart: it is the
   * simulated process's main function.
   */
  addHost(address: SimAddress, boot?: (host: SimHost) => void): SimHost {
    if (this.hostsByAddress.has(address)) {
      throw new InvalidArgumentError(`host ${JSON.stringify(address)} already exists; addresses must be unique`, {
        address,
      });
    }
    const host = new SimHost(this, address, this.hostList.length, this.rng.fork(`host:${address}`), boot);
    this.hostsByAddress.set(address, host);
    this.hostList.push(host);
    if (this.zones.length < this.hostList.length) {
      const grown = new Int32Array(Math.max(16, this.zones.length * 2));
      grown.set(this.zones);
      this.zones = grown;
    }
    host.boot();
    return host;
  }

  host(address: SimAddress): SimHost {
    const host = this.hostsByAddress.get(address);
    if (host === undefined) {
      throw new InvalidArgumentError(`no host ${JSON.stringify(address)} in the simulated network`, { address });
    }
    return host;
  }

  hasHost(address: SimAddress): boolean {
    return this.hostsByAddress.has(address);
  }

  hosts(): readonly SimHost[] {
    return this.hostList;
  }

  /** Replaces the default link behaviour (fields not given keep their current value). */
  setDefaultLink(config: Partial<LinkConfig>): void {
    const next = { ...this.defaultLink, ...config };
    validateLinkConfig(next, 'defaultLink');
    this.defaultLink = next;
  }

  /**
   * Overrides the behaviour of the directed link `from` → `to`; either side may be `'*'` (any
   * host). Lookup order: exact pair, from → any, any → to, default.
   */
  setLink(from: SimAddress | '*', to: SimAddress | '*', config: Partial<LinkConfig>): void {
    const key = this.linkKey(from === '*' ? -1 : this.host(from).id, to === '*' ? -1 : this.host(to).id);
    const base = this.linkOverrides.get(key) ?? this.defaultLink;
    const next = { ...base, ...config };
    validateLinkConfig(next, `link ${from} -> ${to}`);
    this.linkOverrides.set(key, next);
  }

  /** Removes every link override. */
  clearLinks(): void {
    this.linkOverrides.clear();
  }

  /** The configuration that applies to packets from `from` to `to`. */
  link(from: SimHost, to: SimHost): LinkConfig {
    if (this.linkOverrides.size === 0) return this.defaultLink;
    return this.linkOverrides.get(this.linkKey(from.id, to.id)) ?? this.linkOverrides.get(this.linkKey(from.id, -1)) ?? this.linkOverrides.get(this.linkKey(-1, to.id)) ?? this.defaultLink;
  }

  /**
   * Splits the listed hosts into mutually unreachable sides (symmetric). Hosts in no side keep
   * reaching everyone. Replaces any previous partition.
   */
  partition(sides: readonly (readonly SimAddress[])[]): void {
    this.heal();
    sides.forEach((side, index) => {
      for (const address of side) this.zones[this.host(address).id] = index + 1;
    });
    for (let i = 1; i <= sides.length; i++) {
      for (let j = 1; j <= sides.length; j++) if (i !== j) this.blockedZones.add(i * 65536 + j);
    }
  }

  /**
   * Blocks traffic from the `from` hosts to the `to` hosts only; replies still pass the other
   * way. Replaces any previous partition.
   */
  partitionOneWay(from: readonly SimAddress[], to: readonly SimAddress[]): void {
    this.heal();
    for (const address of from) this.zones[this.host(address).id] = 1;
    for (const address of to) {
      const id = this.host(address).id;
      if (this.zones[id] === 1) {
        throw new InvalidArgumentError(`host ${address} is on both sides of a one-way partition`, { address });
      }
      this.zones[id] = 2;
    }
    this.blockedZones.add(1 * 65536 + 2);
  }

  /** Removes every partition. */
  heal(): void {
    this.zones.fill(0);
    this.blockedZones.clear();
  }

  /** True when a partition drops traffic from `from` to `to`. */
  isBlocked(from: SimAddress, to: SimAddress): boolean {
    return this.blockedIds(this.host(from).id, this.host(to).id);
  }

  crash(address: SimAddress): void {
    this.host(address).crash();
  }

  restart(address: SimAddress): void {
    this.host(address).restart();
  }

  /** Totals over all hosts. */
  totals(): HostCounters {
    const sum = zeroCounters();
    for (const host of this.hostList) {
      for (const key of Object.keys(sum) as (keyof HostCounters)[]) sum[key] += host.counters[key];
    }
    return sum;
  }

  // ---- internals used by SimHost and SimStreamEnd ----

  /** @internal */
  blockedIds(fromId: number, toId: number): boolean {
    if (this.blockedZones.size === 0) return false;
    return this.blockedZones.has((this.zones[fromId] as number) * 65536 + (this.zones[toId] as number));
  }

  /** @internal */
  resolve(address: SimAddress): SimHost | undefined {
    return this.hostsByAddress.get(address);
  }

  /** @internal */
  allocateStreamId(): number {
    return this.nextStreamId++;
  }

  /** @internal */
  draw(): Rng {
    return this.rng;
  }

  /** @internal Routes one packet: loss, duplication, reordering, latency, then delivery. */
  transmitPacket(from: SimHost, to: SimHost, data: Uint8Array): void {
    if (this.blockedIds(from.id, to.id)) {
      from.counters.packetsBlocked++;
      return;
    }
    const link = this.link(from, to);
    const rng = this.rng;
    if (link.lossProbability > 0 && rng.chance(link.lossProbability)) {
      from.counters.packetsLost++;
      return;
    }
    const copies = link.duplicateProbability > 0 && rng.chance(link.duplicateProbability) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      let delayMs = sampleLatencyMs(link.latency, rng);
      if (link.reorderProbability > 0 && rng.chance(link.reorderProbability)) delayMs += link.reorderDelayMs * rng.next();
      this.scheduler.afterWith(delayMs, deliverInFlight, new InFlightPacket(from, to, data));
    }
  }

  private linkKey(fromId: number, toId: number): string {
    return `${fromId}>${toId}`;
  }
}

class InFlightPacket {
  constructor(
    readonly from: SimHost,
    readonly to: SimHost,
    readonly data: Uint8Array,
  ) {}
}

function deliverInFlight(packet: InFlightPacket): void {
  packet.to.deliverPacket(packet.from, packet.data);
}

/** One simulated machine: an address, a clock scoped to its current life, handlers, counters. */
export class SimHost {
  private upState = true;
  private epochNumber = 0;
  private scopedClock: ScopedClock;
  private epochRng: Rng;
  private packetHandler: PacketHandler | undefined;
  private readonly listeners = new Map<string, StreamHandler>();
  private readonly openStreams = new Set<SimStreamEnd>();
  readonly counters: HostCounters = zeroCounters();
  /** Cached: the delivery path reads it per packet. */
  private readonly scheduler: Scheduler;

  constructor(
    readonly network: SimNetwork,
    readonly address: SimAddress,
    readonly id: number,
    private readonly baseRng: Rng,
    private readonly bootFn?: (host: SimHost) => void,
  ) {
    this.scheduler = network.scheduler;
    this.scopedClock = new ScopedClock(network.scheduler);
    this.epochRng = baseRng.fork('epoch:0');
  }

  get up(): boolean {
    return this.upState;
  }

  /** Incremented at every restart. */
  get epoch(): number {
    return this.epochNumber;
  }

  /** The clock of the current life of this host; its timers die with a crash. */
  get clock(): ScopedClock {
    return this.scopedClock;
  }

  /** A generator for this life of the host (restarts draw a fresh, still deterministic, one). */
  get rng(): Rng {
    return this.epochRng;
  }

  /** @internal Runs the boot function for the current epoch. */
  boot(): void {
    this.bootFn?.(this);
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.packetHandler = handler;
  }

  /**
   * Sends a best-effort packet. The network keeps `data` as it is (no copy): the caller must not
   * change it afterwards, and receivers must not change what they receive (a duplicated packet
   * is one buffer delivered twice). The transports in `src/net` copy for their callers.
   * Sending while down is a programming error.
   */
  sendPacket(to: SimAddress, data: Uint8Array): void {
    if (!this.upState) throw new Error(`host ${this.address} is down and cannot send`);
    this.counters.packetsSent++;
    this.counters.bytesSent += data.byteLength;
    const target = this.network.resolve(to);
    if (target === undefined) {
      // Like a datagram to an address nobody holds: it vanishes.
      this.counters.packetsLost++;
      return;
    }
    this.network.transmitPacket(this, target, data);
  }

  /** @internal */
  deliverPacket(from: SimHost, data: Uint8Array): void {
    if (!this.upState) {
      this.counters.packetsDroppedWhileDown++;
      return;
    }
    const handler = this.packetHandler;
    if (handler === undefined) {
      this.counters.packetsUnhandled++;
      return;
    }
    const counters = this.counters;
    counters.packetsReceived++;
    counters.bytesReceived += data.byteLength;
    const scheduler = this.scheduler;
    const trace = scheduler.trace;
    trace.mixInt(from.id * 65536 + this.id);
    trace.mixBytes(data, 8);
    handler(from.address, data, scheduler.nowMs());
  }

  /** Accepts streams of `protocol`; replaces any previous handler for it. */
  listen(protocol: string, handler: StreamHandler): void {
    this.listeners.set(protocol, handler);
  }

  unlisten(protocol: string): void {
    this.listeners.delete(protocol);
  }

  /**
   * Opens a stream. `callback` runs once: with a stream after one round trip, with 'refused'
   * when the host is down or nobody listens, 'timeout' across a partition, 'unknown-host' for an
   * address nobody holds. Returns a function that abandons the attempt (the callback then never
   * runs, and a stream that was being set up is closed).
   */
  connect(to: SimAddress, protocol: string, callback: ConnectCallback): () => void {
    if (!this.upState) throw new Error(`host ${this.address} is down and cannot connect`);
    const network = this.network;
    const scheduler = network.scheduler;
    const epoch = this.epochNumber;
    let settled = false;
    let pending: SimStreamEnd | undefined;
    const finish = (err: StreamFailure | null, stream?: SimStreamEnd): void => {
      if (settled) {
        stream?.close();
        return;
      }
      settled = true;
      if (!this.upState || this.epochNumber !== epoch) {
        stream?.close();
        return;
      }
      callback(err, stream);
    };
    const target = network.resolve(to);
    if (target === undefined) {
      scheduler.after(0, () => finish('unknown-host'));
      return () => (settled = true);
    }
    if (network.blockedIds(this.id, target.id) || network.blockedIds(target.id, this.id)) {
      scheduler.after(network.connectTimeoutMs, () => finish('timeout'));
      return () => (settled = true);
    }
    const forward = sampleLatencyMs(network.link(this, target).latency, network.draw());
    const back = sampleLatencyMs(network.link(target, this).latency, network.draw());
    scheduler.after(forward, () => {
      if (settled || !this.upState || this.epochNumber !== epoch) return;
      const handler = target.upState ? target.listeners.get(protocol) : undefined;
      if (handler === undefined) {
        scheduler.after(back, () => finish('refused'));
        return;
      }
      const id = network.allocateStreamId();
      const local = new SimStreamEnd(this, target.address, protocol, id);
      const remote = new SimStreamEnd(target, this.address, protocol, id);
      local.peer = remote;
      remote.peer = local;
      this.openStreams.add(local);
      target.openStreams.add(remote);
      this.counters.streamsOpened++;
      target.counters.streamsOpened++;
      pending = local;
      handler(remote);
      scheduler.after(back, () => finish(null, pending));
    });
    return () => {
      settled = true;
      pending?.close();
    };
  }

  /** Stops the host: timers cancelled, handlers forgotten, streams broken, no delivery. */
  crash(): void {
    if (!this.upState) return;
    this.upState = false;
    this.scopedClock.cancelAll();
    this.packetHandler = undefined;
    this.listeners.clear();
    for (const stream of [...this.openStreams]) stream.abortFromCrash();
    this.openStreams.clear();
  }

  /** Starts a new life: a new epoch, clock and generator, then the boot function. */
  restart(): void {
    if (this.upState) this.crash();
    this.epochNumber++;
    this.scopedClock = new ScopedClock(this.network.scheduler);
    this.epochRng = this.baseRng.fork(`epoch:${this.epochNumber}`);
    this.upState = true;
    this.boot();
  }

  /** @internal */
  forgetStream(stream: SimStreamEnd): void {
    this.openStreams.delete(stream);
  }

  /** Streams currently open on this host (for leak checks). */
  get openStreamCount(): number {
    return this.openStreams.size;
  }
}

class InFlightMessage {
  constructor(
    readonly to: SimStreamEnd,
    readonly data: Uint8Array,
  ) {}
}

function deliverStreamMessage(message: InFlightMessage): void {
  message.to.receive(message.data);
}

/** One end of a simulated reliable, ordered stream. */
export class SimStreamEnd {
  /** @internal set right after construction */
  peer!: SimStreamEnd;
  private openState = true;
  private messageHandler: ((data: Uint8Array, receivedAtMs: number) => void) | undefined;
  private closeHandler: ((failure: StreamFailure | undefined) => void) | undefined;
  /** Messages that arrived before a handler was set. */
  private backlog: Uint8Array[] = [];
  private closedWith: { failure: StreamFailure | undefined } | undefined;
  /** Delivery time of the last message sent this way: later messages never overtake it. */
  private lastDeliveryMs = 0;

  constructor(
    readonly host: SimHost,
    readonly remoteAddress: SimAddress,
    readonly protocol: string,
    readonly streamId: number,
  ) {}

  get localAddress(): SimAddress {
    return this.host.address;
  }

  get open(): boolean {
    return this.openState;
  }

  onMessage(handler: (data: Uint8Array, receivedAtMs: number) => void): void {
    this.messageHandler = handler;
    if (this.backlog.length > 0) {
      const queued = this.backlog;
      this.backlog = [];
      const now = this.host.network.scheduler.nowMs();
      for (const data of queued) handler(data, now);
      // A close that arrived behind the backlog is reported only once the backlog is read.
      if (this.closedWith !== undefined) this.closeHandler?.(this.closedWith.failure);
    }
  }

  onClose(handler: (failure: StreamFailure | undefined) => void): void {
    this.closeHandler = handler;
    if (this.closedWith !== undefined && this.backlog.length === 0) handler(this.closedWith.failure);
  }

  /**
   * Sends one message; like `SimHost.sendPacket`, the buffer is kept as it is, not copied.
   * Returns false when the stream is already closed (the message is dropped).
   */
  send(data: Uint8Array): boolean {
    if (!this.openState) return false;
    const network = this.host.network;
    const scheduler = network.scheduler;
    const peerHost = this.peer.host;
    if (network.blockedIds(this.host.id, peerHost.id)) {
      // TCP would retransmit into the void until its user timeout; both ends give up then.
      this.breakBothEnds('timeout', network.streamBreakDetectMs);
      return false;
    }
    this.host.counters.streamMessagesSent++;
    this.host.counters.streamBytesSent += data.byteLength;
    const link = network.link(this.host, peerHost);
    let delayMs = sampleLatencyMs(link.latency, network.draw());
    if (link.lossProbability > 0 && network.draw().chance(link.lossProbability)) delayMs += network.streamRetransmitDelayMs;
    const deliverAt = Math.max(scheduler.nowMs() + delayMs, this.lastDeliveryMs);
    this.lastDeliveryMs = deliverAt;
    scheduler.atWith(deliverAt, deliverStreamMessage, new InFlightMessage(this.peer, data));
    return true;
  }

  /** Closes gracefully: the peer sees its close after every message already sent. */
  close(): void {
    if (!this.openState) return;
    this.finish(undefined);
    const network = this.host.network;
    const scheduler = network.scheduler;
    const peer = this.peer;
    const delayMs = sampleLatencyMs(network.link(this.host, peer.host).latency, network.draw());
    const at = Math.max(scheduler.nowMs() + delayMs, this.lastDeliveryMs);
    scheduler.at(at, () => peer.remoteClosed(undefined));
  }

  /** @internal The host died: this end vanishes silently, the peer sees a reset. */
  abortFromCrash(): void {
    if (!this.openState) return;
    this.openState = false;
    this.messageHandler = undefined;
    this.closeHandler = undefined;
    this.backlog = [];
    const network = this.host.network;
    const peer = this.peer;
    const delayMs = sampleLatencyMs(network.link(this.host, peer.host).latency, network.draw());
    this.host.counters.streamsBroken++;
    network.scheduler.after(delayMs, () => peer.remoteClosed('reset'));
  }

  /** @internal */
  receive(data: Uint8Array): void {
    if (!this.openState || !this.host.up) return;
    this.host.counters.streamMessagesReceived++;
    this.host.counters.streamBytesReceived += data.byteLength;
    const trace = this.host.network.scheduler.trace;
    trace.mixInt(this.streamId);
    trace.mixBytes(data, 8);
    const handler = this.messageHandler;
    if (handler === undefined) this.backlog.push(data);
    else handler(data, this.host.network.scheduler.nowMs());
  }

  private remoteClosed(failure: StreamFailure | undefined): void {
    if (!this.openState || !this.host.up) return;
    if (failure !== undefined) this.host.counters.streamsBroken++;
    this.finish(failure);
  }

  private breakBothEnds(failure: StreamFailure, afterMs: number): void {
    const scheduler = this.host.network.scheduler;
    const peer = this.peer;
    this.openState = false; // refuse further sends at once; the failure is reported later
    scheduler.after(afterMs, () => {
      this.host.counters.streamsBroken++;
      this.finishIfNotReported(failure);
      peer.remoteClosed(failure);
    });
  }

  private finishIfNotReported(failure: StreamFailure): void {
    if (this.closedWith !== undefined || !this.host.up) return;
    this.closedWith = { failure };
    this.host.forgetStream(this);
    this.closeHandler?.(failure);
  }

  private finish(failure: StreamFailure | undefined): void {
    this.openState = false;
    if (this.closedWith !== undefined) return;
    this.closedWith = { failure };
    this.host.forgetStream(this);
    if (this.backlog.length === 0) this.closeHandler?.(failure);
  }
}
