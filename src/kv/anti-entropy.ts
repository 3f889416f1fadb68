/**
 * Anti-entropy: periodically, with one peer, make two replicas equal, paying in proportion to
 * their difference. The peer is the one this node started a round with least recently (random
 * among ties), so successive rounds visit every peer before any twice.
 *
 *   initiator                                  responder
 *   hello(salt, 256 level-1 sums)       ->
 *                                       <-     equal                          (1 round trip, ~1 KB)
 *                                       <-     subs: 16 level-2 sums per differing bucket
 *   keyreq: differing leaves            ->
 *                                       <-     keys: its keys and digests in those leaves
 *   want(key, context, live dots)       ->     for keys whose digests differ
 *                                       <-     repair(key, delta for the initiator, context,
 *                                                     live dots)
 *   final(key, delta for the responder, context)  ->
 *
 * The digest tree has 256 x 16 leaves, so with 10,000 keys a differing key drags two or three
 * others' digests along, not the store. A "delta for" a replica is what it lacks: the sender's
 * entries whose dots the replica has not seen, plus the removals of the replica's live dots that
 * the sender has seen (crdt unseenBy and removalsFor); the receiver joins it and merges the
 * sender's context. The result equals the join of the two states (a property test in
 * test/property shows it), so after one exchange both replicas hold the same state.
 *
 * Sums are salted per round, so two different states that collide in a bucket do not collide
 * again next round.
 */
import type { Clock, Rng, TimerHandle } from '../common/index.js';
import type { CausalContext, ORMap } from '../crdt/index.js';
import type { Logger } from '../log/index.js';
import { startExchange, type Address, type Exchange, type Stream, type StreamTransport } from '../net/index.js';
import { AE_BUCKETS, AE_SUB_BUCKETS, ANTI_ENTROPY_PROTOCOL, decodeAe, encodeAe, encodeAeChunks, KvMessageType, type AeMessage, type FinalItem, type RepairItem, type WantItem } from './codec.js';
import { KvError, KvErrorCode } from './errors.js';
import type { KvStore } from './store.js';

export interface AntiEntropyOptions {
  store: KvStore;
  streams: StreamTransport;
  clock: Clock;
  rng: Rng;
  /** Stream addresses of the other replicas (membership's live members). */
  peers: () => readonly Address[];
  logger?: Logger;
}

export interface AntiEntropyStats {
  roundsStarted: number;
  roundsEqual: number;
  roundsRepaired: number;
  roundsFailed: number;
  /** Of roundsFailed: no stream to the peer (unreachable, refused, the dial timed out). */
  roundsFailedOpen: number;
  /** Of roundsFailed: the stream opened but the round did not end within antiEntropyTimeoutMs. */
  roundsFailedDeadline: number;
  /** Of roundsFailed: the peer closed or reset the stream first. */
  roundsFailedClosed: number;
  /** Rounds this node answered. */
  roundsServed: number;
  /** Rounds brought forward because the previous one found differences. */
  catchUpRounds: number;
  /** Rounds brought forward because the previous one failed (at most RETRIES_AFTER_FAILURE in a row). */
  retriesAfterFailure: number;
  /** Keys sent in want lists (their digests differed). */
  keysCompared: number;
  /** Keys this node repaired, or helped repair. */
  keysRepaired: number;
  bytesSent: number;
  bytesReceived: number;
  messagesDropped: number;
}

/** What one round cost and found, for callers that want it (the benchmark). */
export interface RoundReport {
  equal: boolean;
  /** Round trips the initiator waited for. */
  roundTrips: number;
  bytesSent: number;
  bytesReceived: number;
  keysRepaired: number;
}

/** The sender's delta for a replica with `context` and `live` dots (undefined: it lacks the key). */
function deltaFor(state: ORMap, context: CausalContext | undefined, live: CausalContext | undefined): ORMap {
  if (context === undefined) return state.clone();
  const delta = state.unseenBy(context);
  if (live !== undefined) delta.join(state.removalsFor(live));
  return delta;
}

/**
 * Quick rounds that must find the replicas equal, in a row, before rounds fall back to the full
 * interval after a difference: at least this many, and one per peer (up to
 * CATCH_UP_MAX_SWEEP), so that what a node learned by anti-entropy reaches each of its peers
 * (rounds visit peers least recently synced first). Without quick rounds the last replica to
 * miss a write (all its peers agreed with it when it asked) waited a full interval or more: 60
 * replicas took 44 s to hold every key where the epidemic itself took 12 s. With three rounds
 * with random peers, a node that learned a key by a repair told about half of its five peers
 * on average (likely, not traced: why one 60-node formation left one node without one key for
 * 28 s, until a periodic round).
 */
const CATCH_UP_EQUAL_ROUNDS = 3;

/**
 * The most quick rounds one difference asks for: the peers are the bounded set of kept
 * connections (5 by default), but with none of them up they are every live member.
 */
const CATCH_UP_MAX_SWEEP = 16;

/**
 * Rounds retried after failures in a row (after antiEntropyCatchUpIntervalMs, doubling: 1, 2,
 * 4 s) before the node waits for its next periodic round. A starting node's first rounds fail
 * more often than later ones (its peers are busy with the same start, or were dropped while it
 * dialled: 9-51 failed rounds in a 60-node formation, most without a stream), and a failure
 * left the node without the cluster's state until its next periodic round, 22-37 s later.
 * Bounded, so a node cut off from every peer does not dial in a loop; a success resets it.
 */
const RETRIES_AFTER_FAILURE = 3;

/** Keys whose encoded state is at most this many bytes are exchanged whole. */
const SMALL_KEY_BYTES = 512;

export class AntiEntropy {
  readonly stats: AntiEntropyStats = {
    roundsStarted: 0,
    roundsEqual: 0,
    roundsRepaired: 0,
    roundsFailed: 0,
    roundsFailedOpen: 0,
    roundsFailedDeadline: 0,
    roundsFailedClosed: 0,
    roundsServed: 0,
    catchUpRounds: 0,
    retriesAfterFailure: 0,
    keysCompared: 0,
    keysRepaired: 0,
    bytesSent: 0,
    bytesReceived: 0,
    messagesDropped: 0,
  };
  private readonly store: KvStore;
  private readonly streams: StreamTransport;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly peers: () => readonly Address[];
  private readonly logger: Logger | undefined;
  private timer: TimerHandle | undefined;
  private nextRoundAtMs = Infinity;
  /** Quick rounds still to run after differences were last found. */
  private equalRoundsToGo = 0;
  /** Rounds this node started that failed since its last one that succeeded. */
  private failuresInARow = 0;
  private running = false;
  private readonly open = new Set<Stream>();
  /** When this node last started a round with each peer (ms on its clock): the next round picks the oldest. */
  private readonly lastRoundAtMs = new Map<Address, number>();

  constructor(options: AntiEntropyOptions) {
    this.store = options.store;
    this.streams = options.streams;
    this.clock = options.clock;
    this.rng = options.rng;
    this.peers = options.peers;
    this.logger = options.logger;
  }

  private get config() {
    return this.store.config;
  }

  /** Answers peers, and starts a round with a random peer every antiEntropyIntervalMs. */
  start(): void {
    this.running = true;
    this.streams.handle(ANTI_ENTROPY_PROTOCOL, (stream) => this.serve(stream));
    const interval = this.config.antiEntropyIntervalMs;
    if (interval > 0) this.schedule(this.rng.int(interval) + 1);
  }

  private schedule(delayMs: number): void {
    this.timer?.cancel();
    this.nextRoundAtMs = this.clock.nowMs() + delayMs;
    this.timer = this.clock.setTimer(delayMs, () => this.tick());
  }

  /**
   * A round found differences: the next one comes after antiEntropyCatchUpIntervalMs (jittered),
   * unless one is due sooner already. See KvConfig.antiEntropyCatchUpIntervalMs.
   */
  private catchUp(differed = true): void {
    if (differed) this.equalRoundsToGo = Math.max(CATCH_UP_EQUAL_ROUNDS, Math.min(this.peers().length, CATCH_UP_MAX_SWEEP));
    if (this.bringForward(1)) this.stats.catchUpRounds++;
  }

  /**
   * Schedules the next round after `scale` x antiEntropyCatchUpIntervalMs (jittered) unless
   * one is due sooner already or quick rounds are off; says whether it did.
   */
  private bringForward(scale: number): boolean {
    const quick = this.config.antiEntropyCatchUpIntervalMs * scale;
    if (!this.running || quick <= 0 || this.config.antiEntropyIntervalMs <= 0) return false;
    const delay = Math.floor(quick * (0.5 + this.rng.next()));
    if (delay >= this.config.antiEntropyIntervalMs || this.clock.nowMs() + delay >= this.nextRoundAtMs) return false;
    this.schedule(delay);
    return true;
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.streams.unhandle(ANTI_ENTROPY_PROTOCOL);
    for (const stream of [...this.open]) stream.close();
    this.open.clear();
  }

  private tick(): void {
    if (!this.running) return;
    // Jittered, so replicas started together do not pair up in lockstep.
    const interval = this.config.antiEntropyIntervalMs;
    this.schedule(Math.floor(interval * (0.75 + this.rng.next() / 2)));
    const peers = this.peers();
    if (peers.length > 0) this.round(this.leastRecentlySynced(peers));
  }

  /**
   * The peer this node started a round with least recently (never counts as oldest), random
   * among ties. Uniformly random choice left peers unvisited for many rounds: after a
   * difference the quick rounds reached the same peer twice while another never heard.
   */
  private leastRecentlySynced(peers: readonly Address[]): Address {
    // Forget peers that left the set (rotations, failures), so the map stays bounded.
    if (this.lastRoundAtMs.size > 2 * peers.length + 16) {
      const current = new Set(peers);
      for (const peer of this.lastRoundAtMs.keys()) if (!current.has(peer)) this.lastRoundAtMs.delete(peer);
    }
    let oldest = Infinity;
    const ties: Address[] = [];
    for (const peer of peers) {
      const at = this.lastRoundAtMs.get(peer) ?? -Infinity;
      if (at < oldest) {
        oldest = at;
        ties.length = 0;
      }
      if (at === oldest) ties.push(peer);
    }
    return this.rng.pick(ties);
  }

  /**
   * After any round this node started (periodic, or a repair its owner asked for): differences
   * mean quick rounds follow. Repairs must count too: a starting node's first repairs pull
   * what its first peers hold, and when those lacked a few writes the node waited up to a full
   * interval for its next round (a 60-node formation held 58 of 60 keys at one node for 15 s).
   */
  private afterRound(report: RoundReport): void {
    this.failuresInARow = 0;
    if (!report.equal) this.catchUp();
    else if (this.equalRoundsToGo > 0) {
      // Catching up, and this peer agreed: a few more quick rounds with other peers, since
      // the last replicas to miss a write are those whose neighbours all missed it too.
      this.equalRoundsToGo--;
      this.catchUp(false);
    }
  }

  /** A round this node started failed: retry soon, a few times, with whichever peer comes up. */
  private afterFailure(): void {
    this.failuresInARow++;
    if (this.failuresInARow > RETRIES_AFTER_FAILURE) return;
    if (this.bringForward(2 ** (this.failuresInARow - 1))) this.stats.retriesAfterFailure++;
  }

  private send(stream: Stream, bytes: Uint8Array, report?: RoundReport): void {
    this.stats.bytesSent += bytes.byteLength;
    if (report !== undefined) report.bytesSent += bytes.byteLength;
    stream.send(bytes);
  }

  private decode(bytes: Uint8Array): AeMessage {
    const limit = Math.max(this.config.maxMessageBytes, 3 * this.config.maxValueBytes) + 64 * 1024;
    return decodeAe(bytes, limit);
  }

  /** Runs one round as initiator with `peer`; `done` receives the report or the failure. */
  round(peer: Address, done?: (error: KvError | undefined, report: RoundReport) => void): void {
    this.stats.roundsStarted++;
    this.lastRoundAtMs.set(peer, this.clock.nowMs());
    const report: RoundReport = { equal: false, roundTrips: 0, bytesSent: 0, bytesReceived: 0, keysRepaired: 0 };
    const store = this.store;
    const max = this.config.maxMessageBytes;
    const salt = this.rng.nextUint32();
    let phase: 'subs' | 'keys' | 'repair' = 'subs';
    const leaves: [number, number][] = [];
    const theirDigests = new Map<string, number>();
    const wanted = new Set<string>();
    const mineOnly: string[] = [];
    const finalItems: FinalItem[] = [];
    const sendList = (s: Stream, message: Parameters<typeof encodeAeChunks>[0]): void => {
      for (const bytes of encodeAeChunks(message, max)) this.send(s, bytes, report);
    };
    const onSubs = (subs: [number, Uint32Array][], last: boolean, s: Stream): void => {
      for (const [bucket, theirs] of subs) {
        const mine = store.subSums(bucket, salt);
        let mask = 0;
        for (let i = 0; i < AE_SUB_BUCKETS; i++) if (mine[i] !== theirs[i]) mask |= 1 << i;
        if (mask !== 0) leaves.push([bucket, mask]);
      }
      if (!last) return;
      report.roundTrips++;
      phase = 'keys';
      sendList(s, { type: KvMessageType.KeyRequest, last: true, leaves });
    };
    const onKeysDone = (s: Stream): void => {
      report.roundTrips++;
      // Keys whose digests differ, or that only one side has, in the differing leaves.
      const want: WantItem[] = [];
      for (const [bucket, mask] of leaves) {
        for (const key of store.keysInLeaves(bucket, mask)) {
          const theirs = theirDigests.get(key);
          if (theirs === undefined) mineOnly.push(key);
          else if (theirs !== store.digestOf(key)) {
            const state = store.stateOf(key) as ORMap;
            // A small key costs less whole than as a context, live dots and two deltas.
            if (store.approxBytesOf(key) <= SMALL_KEY_BYTES) want.push({ key, context: undefined, live: undefined, state });
            else want.push({ key, context: state.context, live: state.liveContext(), state: undefined });
          }
        }
      }
      for (const key of theirDigests.keys()) if (store.stateOf(key) === undefined) want.push({ key, context: undefined, live: undefined, state: undefined });
      for (const item of want) wanted.add(item.key);
      this.stats.keysCompared += want.length;
      phase = 'repair';
      sendList(s, { type: KvMessageType.Want, last: true, items: want });
    };
    const onRepair = (items: RepairItem[], last: boolean, s: Stream, encodedBytes: number, exchange: Exchange): void => {
      for (const item of items) {
        if (!wanted.has(item.key)) continue;
        if (item.delta !== undefined) {
          store.applyRepair(item.key, item.delta, item.context ?? item.delta.context, encodedBytes / Math.max(1, items.length));
          report.keysRepaired++;
        }
        const state = store.stateOf(item.key);
        if (state !== undefined && (item.delta === undefined || item.live !== undefined)) {
          finalItems.push({ key: item.key, delta: deltaFor(state, item.context, item.live), context: state.context });
        }
      }
      if (!last) return;
      report.roundTrips++;
      for (const key of mineOnly) {
        const state = store.stateOf(key);
        if (state !== undefined) finalItems.push({ key, delta: state.clone(), context: state.context });
      }
      report.keysRepaired += mineOnly.length;
      this.stats.keysRepaired += report.keysRepaired;
      sendList(s, { type: KvMessageType.Final, last: true, items: finalItems });
      exchange.succeed();
    };

    startExchange({
      streams: this.streams,
      clock: this.clock,
      to: peer,
      protocol: ANTI_ENTROPY_PROTOCOL,
      timeoutMs: this.config.antiEntropyTimeoutMs,
      track: this.open,
      onOpen: (stream) => this.send(stream, encodeAe({ type: KvMessageType.Hello, salt, sums: store.bucketSums(salt) }), report),
      onMessage: (received, stream, exchange) => {
        this.stats.bytesReceived += received.data.byteLength;
        report.bytesReceived += received.data.byteLength;
        let message: AeMessage;
        try {
          message = this.decode(received.data);
        } catch (err) {
          this.stats.messagesDropped++;
          exchange.fail(err instanceof Error ? err.message : String(err), err);
          return;
        }
        if (message.type === KvMessageType.Equal && phase === 'subs' && leaves.length === 0) {
          report.equal = true;
          report.roundTrips++;
          exchange.succeed();
        } else if (message.type === KvMessageType.Subs && phase === 'subs') {
          onSubs(message.subs, message.last, stream);
        } else if (message.type === KvMessageType.Keys && phase === 'keys') {
          for (const [key, digest] of message.keys) theirDigests.set(key, digest);
          if (message.last) onKeysDone(stream);
        } else if (message.type === KvMessageType.Repair && phase === 'repair') {
          onRepair(message.items, message.last, stream, received.data.byteLength, exchange);
        } else {
          this.stats.messagesDropped++;
          exchange.fail(`unexpected message of type ${message.type} in phase ${phase}`);
        }
      },
      onEnd: (failure) => {
        let error: KvError | undefined;
        if (failure !== undefined) {
          this.stats.roundsFailed++;
          if (failure.kind === 'open') this.stats.roundsFailedOpen++;
          else if (failure.kind === 'deadline') this.stats.roundsFailedDeadline++;
          else if (failure.kind === 'closed') this.stats.roundsFailedClosed++;
          this.logger?.debug({ peer, err: failure.message }, 'anti-entropy round failed');
          error = new KvError(KvErrorCode.AntiEntropyFailed, `anti-entropy with ${peer} failed: ${failure.message}`, { peer }, { cause: failure.cause });
          this.afterFailure();
        } else {
          if (report.equal) this.stats.roundsEqual++;
          else this.stats.roundsRepaired++;
          this.afterRound(report);
        }
        done?.(error, report);
      },
    });
  }

  /** Answers one round as responder. */
  private serve(stream: Stream): void {
    if (!this.running) {
      stream.close();
      return;
    }
    this.stats.roundsServed++;
    this.open.add(stream);
    const store = this.store;
    const max = this.config.maxMessageBytes;
    let phase: 'hello' | 'keyreq' | 'want' | 'final' = 'hello';
    let finished = false;
    const end = (): void => {
      if (finished) return;
      finished = true;
      timer.cancel();
      this.open.delete(stream);
      stream.close();
    };
    const timer = this.clock.setTimer(this.config.antiEntropyTimeoutMs, end);
    const sendList = (message: Parameters<typeof encodeAeChunks>[0]): void => {
      for (const bytes of encodeAeChunks(message, max)) this.send(stream, bytes);
    };
    stream.onClose(() => end());
    stream.onMessage((received) => {
      if (finished) return;
      this.stats.bytesReceived += received.data.byteLength;
      let message: AeMessage;
      try {
        message = this.decode(received.data);
      } catch (err) {
        this.stats.messagesDropped++;
        this.logger?.debug({ peer: stream.remoteAddress, err: (err as Error).message }, 'bad anti-entropy message');
        end();
        return;
      }
      if (message.type === KvMessageType.Hello && phase === 'hello') {
        const mine = store.bucketSums(message.salt);
        const subs: [number, Uint32Array][] = [];
        for (let b = 0; b < AE_BUCKETS; b++) if (mine[b] !== message.sums[b]) subs.push([b, store.subSums(b, message.salt)]);
        if (subs.length === 0) {
          this.send(stream, encodeAe({ type: KvMessageType.Equal }));
          end();
          return;
        }
        this.catchUp();
        sendList({ type: KvMessageType.Subs, last: true, subs });
        phase = 'keyreq';
      } else if (message.type === KvMessageType.KeyRequest && phase === 'keyreq') {
        const keys: [string, number][] = [];
        for (const [bucket, mask] of message.leaves) for (const key of store.keysInLeaves(bucket, mask)) keys.push([key, store.digestOf(key) as number]);
        sendList({ type: KvMessageType.Keys, last: message.last, keys });
        if (message.last) phase = 'want';
      } else if (message.type === KvMessageType.Want && phase === 'want') {
        const items: RepairItem[] = message.items.map((item) => {
          if (item.state !== undefined) {
            // A small key, sent whole: join it, and answer with ours, whole.
            store.applyRepair(item.key, item.state, item.state.context, 0);
            this.stats.keysRepaired++;
            const state = store.stateOf(item.key);
            return { key: item.key, delta: state?.clone(), context: undefined, live: undefined };
          }
          const state = store.stateOf(item.key);
          if (state === undefined) return { key: item.key, delta: undefined, context: undefined, live: undefined };
          return { key: item.key, delta: deltaFor(state, item.context, item.live), context: state.context, live: item.context === undefined ? undefined : state.liveContext() };
        });
        sendList({ type: KvMessageType.Repair, last: message.last, items });
        if (message.last) phase = 'final';
      } else if (message.type === KvMessageType.Final && phase === 'final') {
        for (const item of message.items) {
          store.applyRepair(item.key, item.delta, item.context, received.data.byteLength / Math.max(1, message.items.length));
          this.stats.keysRepaired++;
        }
        if (message.last) end();
      } else {
        this.stats.messagesDropped++;
        end();
      }
    });
  }
}
