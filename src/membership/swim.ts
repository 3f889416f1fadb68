/**
 * SWIM membership with the Lifeguard refinements (Das, Gupta, Motivala: "SWIM", 2002; Dadgar,
 * Phillips, Currey: "Lifeguard", 2018), as one node's state machine.
 *
 * The node probes one member per probe interval (round robin over a shuffled list): a ping,
 * then after the probe timeout indirect pings through k helpers (who send nacks when they get no
 * answer either) and a ping over a reliable stream; no ack by the end of the interval makes the
 * target suspect. Suspicion is disseminated, confirmed by others, and becomes failure after the
 * dogpile timeout unless the member refutes it by raising its incarnation. Updates (alive,
 * suspect, dead) ride on every packet up to the retransmit limit and on gossip rounds; eager
 * gossip forwards news as soon as it arrives. Joins and periodic repairs use digest syncs over
 * streams (sync.ts). Dead members are retried by reconnect, so healed partitions merge.
 *
 * Pure in the sense of DESIGN.md: time comes from the injected Clock, randomness from the Rng,
 * and all I/O goes through the transport interfaces; the simulator drives it deterministically.
 *
 * Invariants:
 * - the node's own row is always present, with its current incarnation;
 * - an update about a member is applied only if it is newer (higher incarnation, or a worse
 *   state at the same incarnation: suspect over alive, dead over suspect);
 * - a member is never removed while alive or suspect; dead and left rows stay until reaped, so
 *   a stale alive message cannot resurrect them.
 */
import { Backoff, type Clock, type Rng, type TimerHandle } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { startExchange, TransportErrorCode, type Address, type PacketTransport, type ReceivedMessage, type ReceivedPacket, type Stream, type StreamTransport } from '../net/index.js';
import { BroadcastQueue, retransmitLimit } from './broadcast.js';
import { Awareness } from './awareness.js';
import {
  buildPacket,
  decodePacket,
  encodeMessage,
  MAX_META_BYTES,
  MAX_NAME_LENGTH,
  MessageType,
  packetOverheadBytes,
  type AliveMessage,
  type DeadMessage,
  type IndirectPingMessage,
  type PingMessage,
  type SuspectMessage,
  type SwimMessage,
} from './codec.js';
import { validateMembershipConfig, type MembershipConfig } from './config.js';
import { MembershipError, MembershipErrorCode } from './errors.js';
import { MemberRegistry, type SeedSet } from './registry.js';
import { expectedConfirmations, refusedSuspicionMinMs, Suspicion, suspicionMinMs } from './suspicion.js';
import { bucketCountFor, bucketDiffers, decodeSync, diffBitmap, encodeSync, PING_PROTOCOL, RECORDS_PER_MESSAGE, SYNC_PROTOCOL, SyncMessageType, type SyncMessage, type SyncRecord } from './sync.js';
import { isLive, MAX_INCARNATION, MemberState, MemberTable, STATE_NAMES } from './table.js';

export type MemberStateName = 'alive' | 'suspect' | 'dead' | 'left';

/** A member as the API shows it. */
export interface MemberInfo {
  readonly name: string;
  readonly address: Address;
  readonly incarnation: number;
  readonly state: MemberStateName;
  readonly meta: Uint8Array;
  /** When this node saw the member's state change last, on this node's monotonic clock. */
  readonly stateChangedAtMs: number;
}

export type MemberEventType = 'join' | 'update' | 'suspect' | 'alive' | 'failed' | 'left' | 'reaped';

export type MembershipEvent =
  | { readonly type: MemberEventType; readonly member: MemberInfo }
  | { readonly type: 'conflict'; readonly name: string; readonly knownAddress: Address; readonly claimedAddress: Address };

/** Counters for metrics; every drop and every anomaly has one. */
export interface MembershipStats {
  packetsReceived: number;
  packetsSent: number;
  /** Packets that failed to decode or spoke another version: dropped. */
  packetsDropped: number;
  /** Messages of unknown types inside otherwise valid packets: skipped. */
  unknownMessages: number;
  /** Pings naming another member than this one (a stale address): not answered. */
  misdirectedPings: number;
  probes: number;
  probesFailed: number;
  indirectProbes: number;
  reliableProbes: number;
  /** Stream pings opened again after the first open failed with a reset (see streamPing). */
  reliableProbeRetries: number;
  acksReceived: number;
  nacksReceived: number;
  suspicionsStarted: number;
  /** Suspicions begun or shortened because this node's probe of the member was refused. */
  suspicionsRefused: number;
  failuresDeclared: number;
  refutations: number;
  /** Packets that carried a refutation straight to a member (see DIRECT_REFUTATION_INTERVAL_MS). */
  directRefutations: number;
  /** Suspicions that ran out and sent the member a last ping before declaring it (see suspicionExpired). */
  lastChancePings: number;
  /** Alive messages sent back to a node that passed on an accusation of this one already refuted. */
  staleCorrections: number;
  /** Two members claiming one name from different addresses. */
  identityConflicts: number;
  syncsStarted: number;
  syncsCompleted: number;
  /** Syncs brought forward because the last one taught this node new members. */
  catchUpSyncs: number;
  syncsFailed: number;
  /** Sync messages (or streams) that were malformed: the sync was abandoned. */
  syncMessagesDropped: number;
  joinAttempts: number;
  reaped: number;
}

export interface MembershipOptions {
  /** This member's name: unique in the cluster, stable across restarts (1 to 128 characters). */
  name: string;
  /** The packet address others reach this node at (what `packets` listens on, as seen by peers). */
  address: Address;
  /** Encoded metadata (see meta.ts), at most 512 bytes. Default empty. */
  meta?: Uint8Array;
  config: MembershipConfig;
  clock: Clock;
  rng: Rng;
  packets: PacketTransport;
  streams: StreamTransport;
  /** Shared interning (simulations of many nodes share one); default a registry of this node's own. */
  registry?: MemberRegistry;
  logger?: Logger;
  /** First incarnation (a restarted node may pass the one it persisted). Default 0. */
  incarnation?: number;
  /**
   * The stream address of a member (for syncs and reliable pings), from its packet address and
   * metadata. Default: the packet address (right for the simulator; the libp2p runtime maps to
   * the peer id carried in the metadata). Undefined means "no stream path to this member".
   */
  streamAddressOf?: (name: string, address: Address, meta: Uint8Array) => Address | undefined;
  /**
   * Stream addresses of members this node is connected to already (the libp2p runtime's kept
   * peers): periodic and catch-up syncs go to one of them when there are any. Default none: a
   * random member.
   */
  connectedPeers?: () => Address[];
}

type Lifecycle = 'new' | 'running' | 'leaving' | 'left' | 'stopped';

interface AckHandler {
  onAck(): void;
  onNack(): void;
}

interface RunningSuspicion {
  suspicion: Suspicion;
  timer: TimerHandle;
}

/** Sync messages may be large (a join receives every member): 4 MiB per message at most. */
const MAX_SYNC_MESSAGE_BYTES = 4 * 1024 * 1024;

function emptyStats(): MembershipStats {
  return {
    packetsReceived: 0,
    packetsSent: 0,
    packetsDropped: 0,
    unknownMessages: 0,
    misdirectedPings: 0,
    probes: 0,
    probesFailed: 0,
    indirectProbes: 0,
    reliableProbes: 0,
    reliableProbeRetries: 0,
    acksReceived: 0,
    nacksReceived: 0,
    suspicionsStarted: 0,
    suspicionsRefused: 0,
    failuresDeclared: 0,
    refutations: 0,
    directRefutations: 0,
    lastChancePings: 0,
    staleCorrections: 0,
    identityConflicts: 0,
    syncsStarted: 0,
    syncsCompleted: 0,
    catchUpSyncs: 0,
    syncsFailed: 0,
    syncMessagesDropped: 0,
    joinAttempts: 0,
    reaped: 0,
  };
}

const NO_META = new Uint8Array(0);

/**
 * A member accused of being suspect or dead sends its refutation straight to every live member it
 * knows (up to DIRECT_REFUTATION_MAX_MEMBERS, chosen at random) besides gossiping it, at most once
 * per DIRECT_REFUTATION_INTERVAL_MS.
 *
 * Why: every member that heard the accusation runs its own suspicion timer, and a refutation that
 * travels by gossip reaches them hop by hop. An accused member is most often one that was too busy
 * to answer, so its refutation starts late, and in an overloaded cluster each hop is slow too.
 * Traced in bench cluster (200 nodes on 2 cores, 25 per process, event loops up to 1.8 s late):
 * members refuted 2-4 s after their first suspicion and the refutation had reached 2 to 20 of 190
 * suspecting members when the first of them declared the member failed, 4.4 s after the
 * suspicion began; 800-2,300 false failure events per formation. One packet per member reaches
 * them all in one hop. The cost is one small packet per member per refutation, a burst a healthy
 * cluster rarely sees; the interval bounds it for a member that keeps being accused.
 */
const DIRECT_REFUTATION_INTERVAL_MS = 1000;
const DIRECT_REFUTATION_MAX_MEMBERS = 1000;
/** Wait before a stream ping's one retry after a reset (see streamPing), ms. */
const STREAM_PING_RESET_RETRY_MS = 10;

export class Membership {
  readonly name: string;
  readonly address: Address;
  readonly config: MembershipConfig;
  readonly stats: MembershipStats = emptyStats();
  private readonly table: MemberTable;
  private readonly selfId: number;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly packets: PacketTransport;
  private readonly streams: StreamTransport;
  private readonly logger: Logger | undefined;
  private readonly streamAddressOf: (name: string, address: Address, meta: Uint8Array) => Address | undefined;
  private readonly connectedPeers: () => Address[];
  private catchUpTimer: TimerHandle | undefined;
  private readonly broadcasts = new BroadcastQueue();
  private readonly awareness: Awareness;
  private readonly suspicions = new Map<number, RunningSuspicion>();
  private readonly ackHandlers = new Map<number, AckHandler>();
  private readonly listeners = new Set<(event: MembershipEvent) => void>();
  private readonly openStreams = new Set<Stream>();
  private lifecycle: Lifecycle = 'new';
  private seq = 0;
  private probeOrder = new Int32Array(0);
  private probeCount = 0;
  private probeIndex = 0;
  private probeTimer: TimerHandle | undefined;
  private gossipTimer: TimerHandle | undefined;
  private eagerTimer: TimerHandle | undefined;
  private pushPullTimer: TimerHandle | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private reapTimer: TimerHandle | undefined;
  private joinTimer: TimerHandle | undefined;
  private joined = false;
  /** Why the last join attempt failed (for status and logs). */
  lastJoinError: MembershipError | undefined;
  private lastConflictLogMs = -Infinity;
  private lastDirectRefutationMs = -Infinity;
  private lastDropLogMs = -Infinity;

  constructor(options: MembershipOptions) {
    validateMembershipConfig(options.config);
    if (typeof options.name !== 'string' || options.name.length === 0 || options.name.length > MAX_NAME_LENGTH) {
      throw new MembershipError(MembershipErrorCode.InvalidConfig, `member name ${JSON.stringify(options.name)} is not valid; expected 1 to ${MAX_NAME_LENGTH} characters`, {
        field: 'name',
      });
    }
    const meta = options.meta ?? NO_META;
    checkMetaSize(meta);
    this.name = options.name;
    this.address = options.address;
    this.config = options.config;
    this.clock = options.clock;
    this.rng = options.rng;
    this.packets = options.packets;
    this.streams = options.streams;
    this.logger = options.logger;
    this.streamAddressOf = options.streamAddressOf ?? ((_name, address) => address);
    this.connectedPeers = options.connectedPeers ?? (() => []);
    this.awareness = new Awareness(options.config.awarenessMaxMultiplier);
    this.table = new MemberTable(options.registry ?? new MemberRegistry());
    this.selfId = this.table.add(this.name, this.address, meta, options.incarnation ?? 0, MemberState.Alive, this.clock.nowMs());
  }

  // ------------------------------------------------------------ public surface

  get incarnation(): number {
    return this.table.incarnation[this.selfId] as number;
  }

  get state(): Lifecycle {
    return this.lifecycle;
  }

  /** True once a join reached a seed (or the node was seeded or started alone). */
  get isJoined(): boolean {
    return this.joined;
  }

  /** Local health score (0 = healthy; see awareness.ts). */
  get health(): number {
    return this.awareness.health;
  }

  /** Members alive or suspect, this node included. */
  get liveCount(): number {
    return this.table.liveCount;
  }

  /** Updates waiting to be disseminated. */
  get pendingBroadcasts(): number {
    return this.broadcasts.size;
  }

  on(listener: (event: MembershipEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  member(name: string): MemberInfo | undefined {
    const id = this.table.find(name);
    return id < 0 ? undefined : this.info(id);
  }

  members(): MemberInfo[] {
    const out: MemberInfo[] = [];
    for (let i = 0; i < this.table.count; i++) out.push(this.info(this.table.at(i)));
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Starts probing, gossip and periodic syncs. */
  start(): void {
    if (this.lifecycle !== 'new') throw this.stateError('start');
    this.lifecycle = 'running';
    this.packets.onPacket((packet) => this.onPacket(packet));
    this.streams.handle(SYNC_PROTOCOL, (stream) => this.acceptSync(stream));
    this.streams.handle(PING_PROTOCOL, (stream) => this.acceptStreamPing(stream));
    const cfg = this.config;
    // Random phases: nodes started together must not probe and gossip in lockstep.
    this.probeTimer = this.clock.setTimer(this.rng.int(cfg.probeIntervalMs), () => this.probeTick());
    if (cfg.pushPullIntervalMs > 0) {
      this.pushPullTimer = this.clock.setTimer(this.rng.int(this.pushPullIntervalMs()) + 1, () => this.pushPullTick());
    }
    if (cfg.reconnectIntervalMs > 0) {
      this.reconnectTimer = this.clock.setTimer(this.rng.int(cfg.reconnectIntervalMs) + 1, () => this.reconnectTick());
    }
    this.reapTimer = this.clock.setTimer(this.reapIntervalMs(), () => this.reapTick());
    this.enqueueAlive(this.selfId);
  }

  /**
   * Joins through `seeds` (stream addresses): syncs with one seed at a time, in random order,
   * moving to the next at once when one fails; done when one answers. When all failed it
   * retries with exponential backoff (joinRetryMinMs doubling to joinRetryMaxMs, half of it
   * jitter). `onJoined` runs once, at the first success.
   *
   * One seed at a time, not all at once: when a whole cluster starts together every node joins
   * through the same few seeds, and syncing with all of them multiplied the handshakes the
   * seeds had to absorb by their number; a random order spreads the joins over the seeds.
   */
  join(seeds: readonly Address[], onJoined?: () => void): void {
    if (this.lifecycle !== 'running') throw this.stateError('join');
    const own = this.streamAddressOf(this.name, this.address, this.table.meta(this.selfId));
    const targets = [...new Set(seeds)].filter((s) => s !== own);
    if (targets.length === 0) {
      this.joined = true;
      onJoined?.();
      return;
    }
    // Half of each delay is jitter: nodes that start together and are refused together (a seed
    // busy with everyone's join) must not all come back at the same moment.
    const backoff = new Backoff({ initialMs: this.config.joinRetryMinMs, maxMs: this.config.joinRetryMaxMs, spread: 1, rng: this.rng });
    const attempt = (): void => {
      this.joinTimer = undefined;
      if (this.lifecycle !== 'running') return;
      this.stats.joinAttempts++;
      const order = this.rng.shuffle([...targets]);
      let lastError: MembershipError | undefined;
      const next = (): void => {
        if (this.lifecycle !== 'running') return;
        const seed = order.shift();
        if (seed === undefined) {
          this.lastJoinError = lastError;
          const delayMs = backoff.next();
          this.logger?.warn({ seeds: targets, retryInMs: delayMs, reason: lastError?.message }, 'join reached no seed; retrying');
          this.joinTimer = this.clock.setTimer(delayMs, attempt);
          return;
        }
        this.sync(seed, true, (error) => {
          if (error !== undefined) {
            lastError = error;
            next();
            return;
          }
          const first = !this.joined;
          this.joined = true;
          // A seed answers with what it knew at that moment; members joining at the same
          // time may have reached it just after. One more (digest, so cheap) sync a little
          // later closes that race instead of leaving it to the periodic push-pull. (The join
          // sync also starts the catch-up chain, since it taught members; that one comes after
          // pushPullCatchUpIntervalMs, 5 s on a LAN, and this race wants a quicker look.)
          if (first) this.clock.setTimer(this.config.joinRetryMinMs, () => this.pushPullOnce());
          if (first) onJoined?.();
        });
      };
      next();
    };
    attempt();
  }

  /**
   * Adds members as alive without any message: a simulation starting from a converged cluster.
   * Not for production use (nothing verifies them).
   */
  seedMembers(members: SeedSet): void {
    const now = this.clock.nowMs();
    for (let i = 0; i < members.nameIds.length; i++) {
      this.table.addIds(members.nameIds[i] as number, members.addressIds[i] as number, members.metaIds[i] as number, 0, MemberState.Alive, now);
    }
    // The probe order is rebuilt (shuffled) at the next probe.
    this.probeIndex = this.probeCount;
    this.joined = true;
  }

  /**
   * Probes `name` now, out of turn, with a stream ping alongside the UDP ping. For hints from
   * below: a runtime that sees its connection to a member reset (a killed process resets its
   * TCP connections at once) calls this, so the failure is suspected within a round trip
   * instead of whenever the round robin reaches the member. Unknown or dead members are ignored.
   */
  probeNow(name: string): void {
    const id = this.table.find(name);
    if (this.lifecycle !== 'running' || id < 0 || id === this.selfId || !isLive(this.table.state[id] as number)) return;
    this.probe(id, true);
  }

  /** Replaces this node's metadata and announces it (a new incarnation). */
  updateMeta(meta: Uint8Array): void {
    checkMetaSize(meta);
    if (this.lifecycle === 'stopped' || this.lifecycle === 'left') throw this.stateError('updateMeta');
    this.table.setMeta(this.selfId, meta);
    this.bumpIncarnation(this.incarnation);
  }

  /**
   * Leaves gracefully: announces the leave (others see "left", not "failed"), stops probing, and
   * calls `done` once the announcement went out to gossipNodes members, or after
   * leavePropagateMs at the latest.
   */
  leave(done?: () => void): void {
    if (this.lifecycle !== 'running') {
      done?.();
      return;
    }
    this.lifecycle = 'leaving';
    this.probeTimer?.cancel();
    this.probeTimer = undefined;
    const inc = this.incarnation;
    this.table.setState(this.selfId, MemberState.Left, inc, this.clock.nowMs());
    let finished = false;
    let timer: TimerHandle | undefined;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      timer?.cancel();
      if (this.lifecycle === 'leaving') this.lifecycle = 'left';
      done?.();
    };
    const others = this.table.liveCount;
    const wanted = Math.min(this.config.gossipNodes, retransmitLimit(this.config.retransmitMult, Math.max(1, others)));
    this.broadcasts.enqueue(this.name, encodeMessage({ type: MessageType.Dead, incarnation: inc, name: this.name, from: this.name }), {
      supersedes: true,
      onTransmit: (transmits) => {
        if (transmits >= wanted) finish();
      },
    });
    if (others === 0) {
      finish();
      return;
    }
    timer = this.clock.setTimer(this.config.leavePropagateMs, finish);
    this.gossip();
    this.armGossip();
  }

  /** Stops everything: timers, handlers, open syncs. The node sends nothing afterwards. */
  stop(): void {
    if (this.lifecycle === 'stopped') return;
    this.lifecycle = 'stopped';
    for (const timer of [this.probeTimer, this.gossipTimer, this.eagerTimer, this.pushPullTimer, this.catchUpTimer, this.reconnectTimer, this.reapTimer, this.joinTimer]) {
      timer?.cancel();
    }
    for (const running of this.suspicions.values()) running.timer.cancel();
    this.suspicions.clear();
    this.ackHandlers.clear();
    for (const stream of [...this.openStreams]) stream.close();
    this.openStreams.clear();
    this.packets.onPacket(undefined);
    this.streams.unhandle(SYNC_PROTOCOL);
    this.streams.unhandle(PING_PROTOCOL);
  }

  // ------------------------------------------------------------ events and views

  private info(id: number): MemberInfo {
    const t = this.table;
    return {
      name: t.name(id),
      address: t.address(id),
      incarnation: t.incarnation[id] as number,
      state: STATE_NAMES[t.state[id] as MemberState],
      meta: t.meta(id),
      stateChangedAtMs: t.changedAtMs[id] as number,
    };
  }

  private emit(type: MemberEventType, id: number): void {
    if (this.listeners.size === 0) return;
    const event: MembershipEvent = { type, member: this.info(id) };
    for (const listener of this.listeners) listener(event);
  }

  private stateError(action: string): MembershipError {
    return new MembershipError(MembershipErrorCode.InvalidState, `cannot ${action} a membership node in state ${this.lifecycle}`, {
      state: this.lifecycle,
    });
  }

  // ------------------------------------------------------------ sending

  private nextSeq(): number {
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    return this.seq;
  }

  private limit(): number {
    return retransmitLimit(this.config.retransmitMult, this.table.liveCount);
  }

  /** Sends `primary` messages plus as many queued updates as fit. */
  private send(to: Address, primary: readonly Uint8Array[]): void {
    if (this.lifecycle === 'stopped') return;
    let used = 0;
    for (const m of primary) used += m.byteLength;
    // The header is at most 3 bytes below 65,536 items: reserve it and the version byte.
    const budget = this.config.maxPacketBytes - used - packetOverheadBytes(65535);
    const piggyback = this.broadcasts.take(budget, this.limit());
    this.packets.send(to, buildPacket(piggyback.length === 0 ? primary : [...primary, ...piggyback]));
    this.stats.packetsSent++;
  }

  /**
   * Queues an update about `member`. Alive and dead supersede everything queued about the
   * member; a suspicion is keyed by its accuser too, so confirmations travel side by side.
   */
  private enqueue(member: string, bytes: Uint8Array, accuser?: string): void {
    if (accuser === undefined) this.broadcasts.enqueue(member, bytes, { supersedes: true });
    else this.broadcasts.enqueue(`${member}\u0000${accuser}`, bytes, { group: member });
    this.armGossip();
    this.scheduleEagerGossip();
  }

  private enqueueAlive(id: number): void {
    this.enqueue(this.table.name(id), this.encodeAlive(id));
  }

  /** The alive message a member's current row stands for. */
  private encodeAlive(id: number): Uint8Array {
    const t = this.table;
    const message: AliveMessage = {
      type: MessageType.Alive,
      incarnation: t.incarnation[id] as number,
      name: t.name(id),
      address: t.address(id),
      meta: t.meta(id),
    };
    return encodeMessage(message);
  }

  private scheduleEagerGossip(): void {
    const delay = this.config.gossipEagerDelayMs;
    if (delay <= 0 || this.eagerTimer !== undefined || (this.lifecycle !== 'running' && this.lifecycle !== 'leaving')) return;
    this.eagerTimer = this.clock.setTimer(delay, () => {
      this.eagerTimer = undefined;
      if (!this.broadcasts.hasFresh || this.lifecycle === 'stopped' || this.lifecycle === 'left') return;
      // The eager round stands in for the next tick: the tick is pushed a full interval out, so
      // eager gossip brings rounds forward rather than adding rounds (and packets).
      this.gossipTimer?.cancel();
      this.gossipTimer = undefined;
      this.gossip();
      this.armGossip();
    });
  }

  // ------------------------------------------------------------ receiving

  private onPacket(packet: ReceivedPacket): void {
    if (this.lifecycle === 'stopped') return;
    this.stats.packetsReceived++;
    let messages: SwimMessage[];
    try {
      const decoded = decodePacket(packet.data, Math.max(this.config.maxPacketBytes, 65_535));
      messages = decoded.messages;
      this.stats.unknownMessages += decoded.unknown;
    } catch (err) {
      this.stats.packetsDropped++;
      this.logDrop(packet.from, err);
      return;
    }
    for (const message of messages) this.handleMessage(message, packet.from);
  }

  private logDrop(from: Address, err: unknown): void {
    const now = this.clock.nowMs();
    // Once per burst: a flood of garbage must not become a flood of log lines.
    if (now - this.lastDropLogMs < 10_000) return;
    this.lastDropLogMs = now;
    this.logger?.warn({ from, err: err instanceof Error ? err.message : String(err), dropped: this.stats.packetsDropped }, 'dropped a bad SWIM packet');
  }

  private handleMessage(message: SwimMessage, from: Address): void {
    switch (message.type) {
      case MessageType.Ping:
        this.onPing(message, from);
        return;
      case MessageType.IndirectPing:
        this.onIndirectPing(message, from);
        return;
      case MessageType.Ack:
        this.stats.acksReceived++;
        this.ackHandlers.get(message.seq)?.onAck();
        return;
      case MessageType.Nack:
        this.stats.nacksReceived++;
        this.ackHandlers.get(message.seq)?.onNack();
        return;
      case MessageType.Suspect:
        this.correctStale(message, from);
        this.onSuspect(message);
        return;
      case MessageType.Alive:
        this.onAlive(message);
        return;
      case MessageType.Dead:
        this.correctStale(message, from);
        this.onDead(message);
        return;
    }
  }

  private onPing(message: PingMessage, from: Address): void {
    if (message.target !== this.name) {
      // Someone has a stale address for another member that now points here: do not answer for it.
      this.stats.misdirectedPings++;
      return;
    }
    this.send(from, [encodeMessage({ type: MessageType.Ack, seq: message.seq })]);
  }

  private onIndirectPing(message: IndirectPingMessage, from: Address): void {
    if (this.lifecycle !== 'running' && this.lifecycle !== 'leaving') return;
    const seq = this.nextSeq();
    let answered = false;
    const cfg = this.config;
    this.ackHandlers.set(seq, {
      onAck: () => {
        if (answered) return;
        answered = true;
        this.ackHandlers.delete(seq);
        this.send(from, [encodeMessage({ type: MessageType.Ack, seq: message.seq })]);
      },
      onNack: () => undefined,
    });
    this.send(message.targetAddress, [encodeMessage({ type: MessageType.Ping, seq, target: message.target, source: this.name })]);
    // Lifeguard: a helper that hears nothing says so at 80% of the probe timeout, so that the
    // requester can tell "the target is down" from "I am not hearing anyone".
    this.clock.setTimer(Math.floor(cfg.probeTimeoutMs * 0.8), () => {
      if (answered) return;
      if (message.wantNack && this.lifecycle !== 'stopped') this.send(from, [encodeMessage({ type: MessageType.Nack, seq: message.seq })]);
    });
    this.clock.setTimer(cfg.probeTimeoutMs, () => {
      if (!answered) this.ackHandlers.delete(seq);
    });
  }

  // ------------------------------------------------------------ state merging

  /** Applies an alive message (gossip or sync). */
  private onAlive(message: AliveMessage): void {
    if (this.lifecycle === 'stopped') return;
    const t = this.table;
    const now = this.clock.nowMs();
    let id = t.find(message.name);
    if (id === this.selfId) {
      if (this.lifecycle !== 'running') return;
      const inc = this.incarnation;
      if (message.address !== this.address) {
        this.conflict(message.name, this.address, message.address);
        if (message.incarnation >= inc) this.refute(message.incarnation);
        return;
      }
      // An echo of our own announcement changes nothing; an alive about us with a higher
      // incarnation is from a previous life: announce a newer one.
      if (message.incarnation > inc) this.refute(message.incarnation);
      return;
    }
    if (id < 0) {
      id = t.add(message.name, message.address, message.meta, message.incarnation, MemberState.Alive, now);
      this.addToProbeOrder(id);
      this.enqueue(message.name, encodeMessage(message));
      this.emit('join', id);
      return;
    }
    const state = t.state[id] as number;
    if (message.address !== t.address(id)) {
      if (isLive(state)) {
        // Keep the live one: a second node claiming this name must not take it over.
        this.conflict(message.name, t.address(id), message.address);
        return;
      }
    }
    if (message.incarnation <= (t.incarnation[id] as number)) return;
    const changedIdentity = message.address !== t.address(id) || !sameBytes(message.meta, t.meta(id));
    t.setAddress(id, message.address);
    if (changedIdentity) t.setMeta(id, message.meta);
    this.cancelSuspicion(id);
    t.setState(id, MemberState.Alive, message.incarnation, now);
    if (state !== MemberState.Alive) this.addToProbeOrder(id);
    this.enqueue(message.name, encodeMessage(message));
    if (state !== MemberState.Alive) this.emit('alive', id);
    if (changedIdentity) this.emit('update', id);
  }

  /** The member a suspect or dead message is about, or -1 when it is unknown or the news is stale. */
  private accused(message: SuspectMessage | DeadMessage): number {
    if (this.lifecycle === 'stopped') return -1;
    const id = this.table.find(message.name);
    if (id < 0 || message.incarnation < (this.table.incarnation[id] as number)) return -1;
    return id;
  }

  /**
   * `refused`: this node's own probe of the member was refused (see refusedSuspicionMinMs): the
   * suspicion, new or running, takes the shorter timeouts.
   */
  private onSuspect(message: SuspectMessage, refused = false): void {
    const t = this.table;
    const id = this.accused(message);
    if (id < 0) return;
    const inc = t.incarnation[id] as number;
    if (id === this.selfId) {
      if (this.lifecycle !== 'running') return;
      this.refute(message.incarnation, true);
      // Being suspected is a sign of our own slowness (Lifeguard).
      this.awareness.apply(1);
      return;
    }
    const state = t.state[id] as number;
    if (state === MemberState.Dead || state === MemberState.Left) return;
    if (state === MemberState.Suspect && message.incarnation === inc) {
      const running = this.suspicions.get(id);
      if (running === undefined) return;
      const confirmed = running.suspicion.confirm(message.from);
      const shortened = refused && this.shortenOnRefusal(running.suspicion);
      // Once a last-chance ping is out, confirmations count no more (Suspicion.confirm): re-arming
      // for one would declare at once, its deadline being past. A refusal still may: the
      // member's process is gone.
      if (confirmed || shortened) this.armSuspicion(id, running.suspicion);
      // Pass confirmations on: they shorten the others' timeouts too.
      if (confirmed) this.enqueue(message.name, encodeMessage(message), message.from);
      return;
    }
    this.startSuspicion(id, message.incarnation, message.from, refused);
    this.enqueue(message.name, encodeMessage(message), message.from);
    this.emit('suspect', id);
    // Confirmation probes: a few members (3k of N on average) probe a newly suspected member at
    // once instead of in their turn, so a dead member collects its k confirmations within a
    // probe interval and a live one is heard from. Without them, confirmations wait for the
    // round robin: about one probe of any given member per interval in the whole cluster.
    const k = this.config.suspicionConfirmations;
    if (message.from !== this.name && k > 0 && this.lifecycle === 'running' && this.rng.chance((3 * k) / Math.max(1, this.table.liveCount))) {
      this.probe(id, true);
    }
  }

  private onDead(message: DeadMessage): void {
    const t = this.table;
    const id = this.accused(message);
    if (id < 0) return;
    const leaving = message.from === message.name;
    if (id === this.selfId) {
      if (this.lifecycle !== 'running') return;
      this.refute(message.incarnation, true);
      return;
    }
    const state = t.state[id] as number;
    if (state === MemberState.Left) return;
    if (state === MemberState.Dead && !leaving) return;
    this.cancelSuspicion(id);
    t.setState(id, leaving ? MemberState.Left : MemberState.Dead, message.incarnation, this.clock.nowMs());
    this.enqueue(message.name, encodeMessage(message));
    if (leaving) this.emit('left', id);
    else {
      this.stats.failuresDeclared++;
      this.emit('failed', id);
    }
  }

  private conflict(name: string, knownAddress: Address, claimedAddress: Address): void {
    this.stats.identityConflicts++;
    const now = this.clock.nowMs();
    if (now - this.lastConflictLogMs >= 10_000) {
      this.lastConflictLogMs = now;
      this.logger?.warn({ member: name, knownAddress, claimedAddress, conflicts: this.stats.identityConflicts }, 'two nodes claim one member name; keeping the live one');
    }
    const event: MembershipEvent = { type: 'conflict', name, knownAddress, claimedAddress };
    for (const listener of this.listeners) listener(event);
  }

  /** `direct`: an accusation (suspect, dead) is refuted; see DIRECT_REFUTATION_INTERVAL_MS. */
  private refute(seenIncarnation: number, direct = false): void {
    this.stats.refutations++;
    this.bumpIncarnation(seenIncarnation);
    const now = this.clock.nowMs();
    if (!direct || now - this.lastDirectRefutationMs < DIRECT_REFUTATION_INTERVAL_MS) return;
    this.lastDirectRefutationMs = now;
    const t = this.table;
    const alive = buildPacket([this.encodeAlive(this.selfId)]);
    for (const id of this.randomMembers(DIRECT_REFUTATION_MAX_MEMBERS, (other) => isLive(t.state[other] as number))) {
      this.packets.send(t.address(id), alive);
      this.stats.packetsSent++;
      this.stats.directRefutations++;
    }
  }

  /** Takes an incarnation above `atLeast` and announces it. */
  private bumpIncarnation(atLeast: number): void {
    const next = Math.min(MAX_INCARNATION, Math.max(this.incarnation, atLeast) + 1);
    this.table.setState(this.selfId, MemberState.Alive, next, this.clock.nowMs());
    this.enqueueAlive(this.selfId);
  }

  // ------------------------------------------------------------ suspicion

  private startSuspicion(id: number, incarnation: number, from: string, refused: boolean): void {
    const now = this.clock.nowMs();
    this.cancelSuspicion(id);
    this.table.setState(id, MemberState.Suspect, incarnation, now);
    const cfg = this.config;
    const members = this.table.liveCount;
    const min = suspicionMinMs(cfg.suspicionMult, members, cfg.probeIntervalMs);
    const suspicion = new Suspicion(incarnation, now, from, expectedConfirmations(cfg.suspicionConfirmations, members), min, min * cfg.suspicionMaxTimeoutMult);
    this.stats.suspicionsStarted++;
    if (refused) this.shortenOnRefusal(suspicion);
    this.armSuspicion(id, suspicion);
  }

  /**
   * A refused probe backs the suspicion: its timeouts lose the log10(N) factor (see
   * refusedSuspicionMinMs). Confirmations are still counted as before: a prober whose path
   * alone rejects gets the refused maximum (suspicionMaxTimeoutMult x the refused minimum, 12 s
   * on a LAN), not the minimum.
   */
  private shortenOnRefusal(suspicion: Suspicion): boolean {
    const cfg = this.config;
    const min = refusedSuspicionMinMs(cfg.suspicionMult, cfg.probeIntervalMs);
    suspicion.refused = true;
    if (!suspicion.shorten(min, min * cfg.suspicionMaxTimeoutMult)) return false;
    this.stats.suspicionsRefused++;
    return true;
  }

  private armSuspicion(id: number, suspicion: Suspicion): void {
    this.suspicions.get(id)?.timer.cancel();
    const delay = Math.max(0, suspicion.deadlineMs() - this.clock.nowMs());
    const timer = this.clock.setTimer(delay, () => this.afterPendingInput(() => this.suspicionExpired(id, suspicion)));
    this.suspicions.set(id, { suspicion, timer });
  }

  /**
   * Runs `fn` once the packets that arrived by now have been handled. On a real event loop,
   * expired timers run before the I/O that waited during a stall: a probe's verdict or a
   * suspicion's expiry then ran before the ack or refutation already sitting in the socket, and
   * an overloaded node (a whole cluster starting on two cores) declared healthy members failed
   * by the dozen. A zero-delay timer runs after that I/O (setImmediate on the real clock; on
   * the simulator, after the events due at the same time).
   */
  private afterPendingInput(fn: () => void): void {
    this.clock.setTimer(0, fn);
  }

  private cancelSuspicion(id: number): void {
    const running = this.suspicions.get(id);
    if (running === undefined) return;
    running.timer.cancel();
    this.suspicions.delete(id);
  }

  /**
   * A suspicion ran out. Unless this node's own probe was refused, it first sends the member one
   * last ping with the accusation (Lifeguard's buddy system) and waits a probe timeout: a member
   * that is up refutes at once, and its ack carries the refutation (queued news rides on every
   * packet), or it corrects a stale accusation (see correctStale). Traced in bench cluster (200
   * nodes on 2 cores, with direct refutations): the remaining false failures were single
   * observers declaring a member failed seconds after almost every other member had its
   * refutation. A member that is gone costs this node one probe timeout more before it declares.
   */
  private suspicionExpired(id: number, suspicion: Suspicion): void {
    if (this.suspicions.get(id)?.suspicion !== suspicion) return;
    const t = this.table;
    if (t.state[id] !== MemberState.Suspect || t.incarnation[id] !== suspicion.incarnation) {
      this.suspicions.delete(id);
      return;
    }
    if (!suspicion.refused && !suspicion.lastChanceSent && this.lifecycle === 'running') {
      suspicion.lastChanceSent = true;
      this.stats.lastChancePings++;
      const seq = this.nextSeq();
      const name = t.name(id);
      const waitMs = this.awareness.scale(this.config.probeTimeoutMs);
      // The ack needs no handler: a refutation in it clears the suspicion through onAlive.
      this.send(t.address(id), [
        encodeMessage({ type: MessageType.Suspect, incarnation: suspicion.incarnation, name, from: this.name }),
        encodeMessage({ type: MessageType.Ping, seq, target: name, source: this.name }),
      ]);
      const timer = this.clock.setTimer(waitMs, () => this.afterPendingInput(() => this.suspicionExpired(id, suspicion)));
      this.suspicions.set(id, { suspicion, timer });
      return;
    }
    this.suspicions.delete(id);
    this.onDead({ type: MessageType.Dead, incarnation: suspicion.incarnation, name: t.name(id), from: this.name });
  }

  /**
   * An accusation of this node at an incarnation it has already refuted: whoever passed it on has
   * not heard the refutation. One packet with the current alive goes back to it.
   */
  private correctStale(message: SuspectMessage | DeadMessage, from: Address): void {
    if (message.name !== this.name || message.incarnation >= this.incarnation || this.lifecycle !== 'running') return;
    this.stats.staleCorrections++;
    this.packets.send(from, buildPacket([this.encodeAlive(this.selfId)]));
    this.stats.packetsSent++;
  }

  // ------------------------------------------------------------ probing

  private addToProbeOrder(id: number): void {
    if (this.probeCount === this.probeOrder.length) {
      const bigger = new Int32Array(Math.max(16, this.probeOrder.length * 2));
      bigger.set(this.probeOrder);
      this.probeOrder = bigger;
    }
    // Append, then swap with a random slot among those not yet probed this round: new members
    // land at random places, so a newcomer is not probed by everyone at once.
    const at = this.probeCount++;
    this.probeOrder[at] = id;
    const start = Math.min(this.probeIndex, at);
    const swap = start + this.rng.int(at - start + 1);
    this.probeOrder[at] = this.probeOrder[swap] as number;
    this.probeOrder[swap] = id;
  }

  private rebuildProbeOrder(): void {
    const ids: number[] = [];
    for (let i = 0; i < this.table.count; i++) {
      const id = this.table.at(i);
      if (id !== this.selfId && isLive(this.table.state[id] as number)) ids.push(id);
    }
    this.rng.shuffle(ids);
    this.probeOrder = Int32Array.from(ids);
    this.probeCount = ids.length;
    this.probeIndex = 0;
  }

  /** The next member to probe, or -1 when there is none. */
  private nextProbeTarget(): number {
    for (let pass = 0; pass < 2; pass++) {
      while (this.probeIndex < this.probeCount) {
        const id = this.probeOrder[this.probeIndex++] as number;
        if (id !== this.selfId && isLive(this.table.getState(id))) return id;
      }
      this.rebuildProbeOrder();
      if (this.probeCount === 0) return -1;
    }
    return -1;
  }

  private probeTick(): void {
    if (this.lifecycle !== 'running') return;
    this.probeTimer = this.clock.setTimer(this.awareness.scale(this.config.probeIntervalMs), () => this.probeTick());
    const target = this.nextProbeTarget();
    if (target >= 0) this.probe(target);
  }

  /**
   * Probes one member. `confirming`: a confirmation probe of a suspect (see onSuspect), which
   * also pings over a stream at once, so a refused connection (a dead process) confirms the
   * suspicion within a round trip instead of after the probe timeout.
   */
  private probe(id: number, confirming = false): void {
    const cfg = this.config;
    const t = this.table;
    const name = t.name(id);
    const address = t.address(id);
    const incarnation = t.incarnation[id] as number;
    const seq = this.nextSeq();
    const timeoutMs = this.awareness.scale(cfg.probeTimeoutMs);
    const intervalMs = this.awareness.scale(cfg.probeIntervalMs);
    let acked = false;
    let nacks = 0;
    let expectedNacks = 0;
    let indirectTimer: TimerHandle | undefined;
    let endTimer: TimerHandle | undefined;
    let abortStreamPing: (() => void) | undefined;
    this.stats.probes++;
    const finish = (): void => {
      this.ackHandlers.delete(seq);
      indirectTimer?.cancel();
      abortStreamPing?.();
    };
    this.ackHandlers.set(seq, {
      onAck: () => {
        if (acked) return;
        acked = true;
        finish();
        endTimer?.cancel();
        this.awareness.apply(-1);
      },
      onNack: () => {
        nacks++;
      },
    });
    const primary: Uint8Array[] = [];
    // Lifeguard's buddy system: tell a suspect member it is suspected, so it can refute at once.
    if (t.state[id] === MemberState.Suspect) {
      primary.push(encodeMessage({ type: MessageType.Suspect, incarnation, name, from: this.name }));
    }
    primary.push(encodeMessage({ type: MessageType.Ping, seq, target: name, source: this.name }));
    this.send(address, primary);

    indirectTimer = this.clock.setTimer(timeoutMs, () =>
      this.afterPendingInput(() => {
        indirectTimer = undefined;
        if (acked || concluded || this.lifecycle !== 'running') return;
        const helpers = this.randomMembers(cfg.indirectChecks, (other) => other !== id && t.state[other] === MemberState.Alive);
        expectedNacks = helpers.length;
        for (const helper of helpers) {
          this.stats.indirectProbes++;
          this.send(t.address(helper), [encodeMessage({ type: MessageType.IndirectPing, seq, target: name, targetAddress: address, wantNack: true, source: this.name })]);
        }
        if (cfg.reliableProbeFallback && !confirming) abortStreamPing = this.streamPing(id, seq, intervalMs - timeoutMs, () => conclude(true));
      }),
    );

    let concluded = false;
    /** The probe failed: at the end of the interval, or early when the target's port refused us. */
    const conclude = (refused: boolean): void => {
      if (concluded) return;
      concluded = true;
      endTimer?.cancel();
      finish();
      if (acked || this.lifecycle !== 'running') return;
      // Missed nacks mean our own links are bad, not the target (Lifeguard); without helpers,
      // any failed probe counts against our health. A refusal is the target's doing, not ours.
      if (!refused) this.awareness.apply(expectedNacks > 0 ? expectedNacks - Math.min(nacks, expectedNacks) : 1);
      if (t.find(name) !== id || !isLive(t.state[id] as number)) return;
      this.stats.probesFailed++;
      this.onSuspect({ type: MessageType.Suspect, incarnation: t.incarnation[id] as number, name, from: this.name }, refused);
    };
    endTimer = this.clock.setTimer(intervalMs, () => this.afterPendingInput(() => conclude(false)));
    // A refused connection means nothing listens at the target any more (its process is gone):
    // suspect now instead of at the end of the interval, with the refused timeout (no log10(N)
    // factor), which still gives a member that is merely restarting time to come back and refute.
    if (cfg.reliableProbeFallback && confirming) abortStreamPing = this.streamPing(id, seq, intervalMs, () => conclude(true));
  }

  /**
   * A ping over a reliable stream; an ack is delivered to the probe's handler. Returns an abort.
   * A refused open calls `onRefused`. An open that failed with a reset is tried once more after
   * STREAM_PING_RESET_RETRY_MS (time allowing): the runtime's hint of a reset connection (a
   * killed process) comes while that connection is being torn down, and a stream opened at once
   * may go out on it and fail with a reset instead of reaching the dead port. Past bug: in the
   * cluster benchmark, 7 of 60 SIGKILLs were declared failed at all ~1.9 s later than the rest
   * (4.1 instead of 2.2 s at 60 nodes): the hinted probe's stream died with the old connection,
   * so the member was suspected only at the end of the probe interval, with the longer timeout.
   */
  private streamPing(id: number, seq: number, timeoutMs: number, onRefused: () => void): (() => void) | undefined {
    const t = this.table;
    const to = this.streamAddressOf(t.name(id), t.address(id), t.meta(id));
    if (to === undefined || timeoutMs <= 0) return undefined;
    this.stats.reliableProbes++;
    const deadlineMs = this.clock.nowMs() + timeoutMs;
    let stream: Stream | undefined;
    let done = false;
    let cancelOpen: (() => void) | undefined;
    let retryTimer: TimerHandle | undefined;
    const close = (): void => {
      done = true;
      retryTimer?.cancel();
      if (stream !== undefined) {
        this.openStreams.delete(stream);
        stream.close();
      }
    };
    const attempt = (retries: number): void => {
      cancelOpen = this.streams.open(
        to,
        PING_PROTOCOL,
        (error, opened) => {
          if (error !== null || opened === undefined || done) {
            opened?.close();
            if (done) return;
            if (error?.code === TransportErrorCode.ConnectionRefused) onRefused();
            else if (error?.code === TransportErrorCode.ConnectionReset && retries > 0 && this.clock.nowMs() + STREAM_PING_RESET_RETRY_MS < deadlineMs) {
              this.stats.reliableProbeRetries++;
              retryTimer = this.clock.setTimer(STREAM_PING_RESET_RETRY_MS, () => {
                retryTimer = undefined;
                if (!done && this.lifecycle === 'running') attempt(retries - 1);
              });
            }
            return;
          }
          stream = opened;
          this.openStreams.add(opened);
          opened.onMessage((message) => {
            try {
              for (const m of decodePacket(message.data, this.config.maxPacketBytes).messages) {
                if (m.type === MessageType.Ack && m.seq === seq) this.ackHandlers.get(seq)?.onAck();
              }
            } catch {
              this.stats.syncMessagesDropped++;
            }
            close();
          });
          opened.onClose(() => this.openStreams.delete(opened));
          opened.send(buildPacket([encodeMessage({ type: MessageType.Ping, seq, target: t.name(id), source: this.name })]));
        },
        { timeoutMs: Math.max(1, deadlineMs - this.clock.nowMs()) },
      );
    };
    attempt(1);
    return () => {
      if (!done) cancelOpen?.();
      close();
    };
  }

  private acceptStreamPing(stream: Stream): void {
    this.openStreams.add(stream);
    stream.onClose(() => this.openStreams.delete(stream));
    stream.onMessage((message: ReceivedMessage) => {
      try {
        for (const m of decodePacket(message.data, this.config.maxPacketBytes).messages) {
          if (m.type === MessageType.Ping && m.target === this.name) {
            stream.send(buildPacket([encodeMessage({ type: MessageType.Ack, seq: m.seq })]));
          }
        }
      } catch (err) {
        this.stats.packetsDropped++;
        this.logDrop(stream.remoteAddress, err);
        stream.close();
      }
    });
  }

  /** Up to `count` distinct random members (never this node) that pass `accept`. */
  private randomMembers(count: number, accept: (id: number) => boolean): number[] {
    const t = this.table;
    const out: number[] = [];
    if (count <= 0 || t.count <= 1) return out;
    if (t.count <= 4 * count + 16) {
      const all: number[] = [];
      for (let i = 0; i < t.count; i++) {
        const id = t.at(i);
        if (id !== this.selfId && accept(id)) all.push(id);
      }
      this.rng.shuffle(all);
      return all.slice(0, count);
    }
    // Large tables: sample with rejection; a few misses only shorten the list.
    for (let tries = 0; tries < 4 * count + 16 && out.length < count; tries++) {
      const id = t.at(this.rng.int(t.count));
      if (id === this.selfId || out.includes(id) || !accept(id)) continue;
      out.push(id);
    }
    return out;
  }

  // ------------------------------------------------------------ gossip

  /**
   * Gossip rounds run every gossipIntervalMs only while updates are waiting; an idle node arms
   * no gossip timer at all (60 nodes ticking five times a second for nothing was measurable).
   */
  private gossipTick(): void {
    this.gossipTimer = undefined;
    if (this.lifecycle === 'stopped' || this.lifecycle === 'left') return;
    this.gossip();
    this.armGossip();
  }

  private armGossip(): void {
    if (this.gossipTimer !== undefined || this.broadcasts.size === 0 || this.lifecycle === 'stopped' || this.lifecycle === 'left') return;
    this.gossipTimer = this.clock.setTimer(this.config.gossipIntervalMs, () => this.gossipTick());
  }

  private gossip(): void {
    if (this.broadcasts.size === 0) return;
    const t = this.table;
    const now = this.clock.nowMs();
    const deadWindow = this.config.gossipToTheDeadMs;
    const targets = this.randomMembers(this.config.gossipNodes, (id) => {
      const state = t.state[id] as number;
      // Recently dead members still hear gossip, so a wrongly failed one learns and refutes.
      return isLive(state) || now - (t.changedAtMs[id] as number) < deadWindow;
    });
    const limit = this.limit();
    const budget = this.config.maxPacketBytes - packetOverheadBytes(65535);
    for (const id of targets) {
      const messages = this.broadcasts.take(budget, limit);
      if (messages.length === 0) break;
      this.packets.send(t.address(id), buildPacket(messages));
      this.stats.packetsSent++;
    }
  }

  // ------------------------------------------------------------ sync (push-pull)

  private pushPullIntervalMs(): number {
    const n = this.table.liveCount;
    const scale = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
    return this.config.pushPullIntervalMs * scale;
  }

  /**
   * The periodic sync goes to a connected peer when the runtime names some, like the catch-up
   * sync: a sync is the whole member table either way, and the kept peers are random members that
   * rotate, so the syncs still mix the cluster, while a random member meant a handshake and a
   * connection to close again for every sync (a 7-node cluster in one process: 21.3 ms/s idle
   * with them, 18.5 without, runs spread +-2; the 60-node cluster bench: 0.308 -> 0.287 % idle
   * CPU and 347 -> 313 B/s per node, three runs each). A random member otherwise, as memberlist
   * does.
   */
  private pushPullTick(): void {
    if (this.lifecycle !== 'running') return;
    this.pushPullTimer = this.clock.setTimer(this.pushPullIntervalMs(), () => this.pushPullTick());
    this.syncConnectedOrRandom();
  }

  /** One sync with a connected peer when the runtime names some, else with a random alive member. */
  private syncConnectedOrRandom(): void {
    const connected = this.connectedPeers();
    if (connected.length > 0) this.sync(this.rng.pick(connected), false, () => undefined);
    else this.pushPullOnce();
  }

  /** One sync with a random alive member. */
  private pushPullOnce(): void {
    if (this.lifecycle !== 'running') return;
    const [peer] = this.randomMembers(1, (id) => this.table.state[id] === MemberState.Alive);
    if (peer === undefined) return;
    const to = this.streamAddressOf(this.table.name(peer), this.table.address(peer), this.table.meta(peer));
    if (to !== undefined) this.sync(to, false, () => undefined);
  }

  /**
   * A sync taught this node members it did not know: the cluster is forming or merging, so the
   * next sync comes after pushPullCatchUpIntervalMs (jittered), with a connected peer when there
   * is one. Each catch-up sync that teaches something schedules the next; the first that teaches
   * nothing ends the chain (the periodic push-pull carries on as before).
   */
  private catchUp(): void {
    const interval = this.config.pushPullCatchUpIntervalMs;
    if (interval <= 0 || this.catchUpTimer !== undefined || this.lifecycle !== 'running') return;
    this.stats.catchUpSyncs++;
    this.catchUpTimer = this.clock.setTimer(Math.floor(interval * (0.5 + this.rng.next())), () => {
      this.catchUpTimer = undefined;
      if (this.lifecycle !== 'running') return;
      this.syncConnectedOrRandom();
    });
  }

  private reconnectTick(): void {
    if (this.lifecycle !== 'running') return;
    this.reconnectTimer = this.clock.setTimer(this.config.reconnectIntervalMs, () => this.reconnectTick());
    const [peer] = this.randomMembers(1, (id) => this.table.state[id] === MemberState.Dead);
    if (peer === undefined) return;
    const to = this.streamAddressOf(this.table.name(peer), this.table.address(peer), this.table.meta(peer));
    if (to !== undefined) this.sync(to, false, () => undefined);
  }

  private reapIntervalMs(): number {
    return Math.max(1000, Math.min(60_000, Math.floor(this.config.tombstoneTimeoutMs / 4)));
  }

  private reapTick(): void {
    if (this.lifecycle === 'stopped') return;
    this.reapTimer = this.clock.setTimer(this.reapIntervalMs(), () => this.reapTick());
    const t = this.table;
    const now = this.clock.nowMs();
    const tombstone = this.config.tombstoneTimeoutMs;
    const doomed: number[] = [];
    for (let i = 0; i < t.count; i++) {
      const id = t.at(i);
      if (id === this.selfId || isLive(t.state[id] as number)) continue;
      if (now - (t.changedAtMs[id] as number) >= tombstone) doomed.push(id);
    }
    for (const id of doomed) {
      const info = this.info(id);
      this.broadcasts.forget(info.name);
      t.remove(id);
      this.stats.reaped++;
      for (const listener of this.listeners) listener({ type: 'reaped', member: info });
    }
  }

  /** Records of this node's members in the buckets `differs` selects. */
  private recordsIn(buckets: number, differs: (bucket: number) => boolean): SyncRecord[] {
    const t = this.table;
    const out: SyncRecord[] = [];
    for (let i = 0; i < t.count; i++) {
      const id = t.at(i);
      if (!differs(t.bucketOf(id, buckets))) continue;
      out.push({
        name: t.name(id),
        address: t.address(id),
        incarnation: t.incarnation[id] as number,
        state: t.state[id] as MemberState,
        meta: t.meta(id),
      });
    }
    return out;
  }

  private sendRecords(stream: Stream, records: SyncRecord[]): void {
    for (let i = 0; i < records.length; i += RECORDS_PER_MESSAGE) {
      stream.send(encodeSync({ type: SyncMessageType.Records, records: records.slice(i, i + RECORDS_PER_MESSAGE) }));
    }
    stream.send(encodeSync({ type: SyncMessageType.Done }));
  }

  /** Applies a peer's records, as memberlist does: a remote "dead" only makes us suspect. */
  private mergeRecords(records: readonly SyncRecord[], from: string): void {
    for (const r of records) {
      if (this.lifecycle === 'stopped') return;
      switch (r.state) {
        case MemberState.Alive:
          this.onAlive({ type: MessageType.Alive, incarnation: r.incarnation, name: r.name, address: r.address, meta: r.meta });
          break;
        case MemberState.Left:
          this.onDead({ type: MessageType.Dead, incarnation: r.incarnation, name: r.name, from: r.name });
          break;
        case MemberState.Suspect:
        case MemberState.Dead:
          if (this.table.find(r.name) < 0 && r.state === MemberState.Suspect) {
            this.onAlive({ type: MessageType.Alive, incarnation: r.incarnation, name: r.name, address: r.address, meta: r.meta });
          }
          this.onSuspect({ type: MessageType.Suspect, incarnation: r.incarnation, name: r.name, from });
          break;
      }
    }
  }

  /** Runs one sync as initiator; `done` gets undefined on success or the error. */
  private sync(to: Address, joining: boolean, done: (error: MembershipError | undefined) => void): void {
    this.stats.syncsStarted++;
    const buckets = bucketCountFor(this.table.count);
    let sentMine = false;
    /** The responder's member name, from its DIFF: the "from" of suspicions its records carry. */
    let peer = to;
    /** The responder's records named members this node did not know. */
    let learned = false;
    startExchange({
      streams: this.streams,
      clock: this.clock,
      to,
      protocol: SYNC_PROTOCOL,
      timeoutMs: this.config.syncTimeoutMs,
      track: this.openStreams,
      onOpen: (stream) => {
        stream.send(encodeSync({ type: SyncMessageType.Hello, joining, from: this.name, buckets, sums: this.table.bucketSums(buckets) }));
      },
      onMessage: (received, stream, exchange) => {
        let message: SyncMessage;
        try {
          message = decodeSync(received.data, MAX_SYNC_MESSAGE_BYTES);
        } catch (err) {
          this.stats.syncMessagesDropped++;
          exchange.fail(err instanceof Error ? err.message : String(err), err);
          return;
        }
        if (message.type === SyncMessageType.Diff && !sentMine) {
          sentMine = true;
          peer = message.from;
          this.sendRecords(
            stream,
            this.recordsIn(buckets, (b) => bucketDiffers(message.differing, b)),
          );
        } else if (message.type === SyncMessageType.Records) {
          const known = this.table.count;
          this.mergeRecords(message.records, peer);
          if (this.table.count > known) learned = true;
        } else if (message.type === SyncMessageType.Done && sentMine) {
          exchange.succeed();
          if (learned) this.catchUp();
        } else {
          this.stats.syncMessagesDropped++;
          exchange.fail(`unexpected sync message of type ${message.type}`);
        }
      },
      onEnd: (failure) => {
        if (failure === undefined) {
          this.stats.syncsCompleted++;
          done(undefined);
          return;
        }
        this.stats.syncsFailed++;
        this.logger?.debug({ peer: to, err: failure.message }, 'sync failed');
        done(new MembershipError(MembershipErrorCode.SyncFailed, `sync with ${to} failed: ${failure.message}`, { peer: to }, { cause: failure.cause }));
      },
    });
  }

  /** Runs one sync as responder. */
  private acceptSync(stream: Stream): void {
    if (this.lifecycle === 'stopped') {
      stream.close();
      return;
    }
    this.openStreams.add(stream);
    let from: string | undefined;
    let finished = false;
    const timer = this.clock.setTimer(this.config.syncTimeoutMs, () => end());
    const end = (): void => {
      if (finished) return;
      finished = true;
      timer.cancel();
      this.openStreams.delete(stream);
      stream.close();
    };
    stream.onClose(() => end());
    stream.onMessage((received) => {
      if (finished) return;
      let message: SyncMessage;
      try {
        message = decodeSync(received.data, MAX_SYNC_MESSAGE_BYTES);
      } catch (err) {
        this.stats.syncMessagesDropped++;
        this.logDrop(stream.remoteAddress, err);
        end();
        return;
      }
      if (message.type === SyncMessageType.Hello && from === undefined) {
        from = message.from;
        const mine = this.table.bucketSums(message.buckets);
        const differing = diffBitmap(mine, message.sums);
        stream.send(encodeSync({ type: SyncMessageType.Diff, from: this.name, differing }));
        this.sendRecords(
          stream,
          this.recordsIn(message.buckets, (b) => bucketDiffers(differing, b)),
        );
      } else if (message.type === SyncMessageType.Records && from !== undefined) {
        this.mergeRecords(message.records, from);
      } else if (message.type === SyncMessageType.Done && from !== undefined) {
        end();
      } else {
        this.stats.syncMessagesDropped++;
        end();
      }
    });
  }
}

function checkMetaSize(meta: Uint8Array): void {
  if (!(meta instanceof Uint8Array) || meta.byteLength > MAX_META_BYTES) {
    throw new MembershipError(
      MembershipErrorCode.InvalidMeta,
      `member metadata of ${meta instanceof Uint8Array ? `${meta.byteLength} bytes` : typeof meta} is not valid; expected at most ${MAX_META_BYTES} bytes`,
      { maxBytes: MAX_META_BYTES },
    );
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
