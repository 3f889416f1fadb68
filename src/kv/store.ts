/**
 * The replicated key/value store: every node holds a full replica of cluster state as keys
 * mapped to CRDT maps (OR-maps from src/crdt). lashup's equivalent of lashup_kv.
 *
 * - Local updates run a mutation on a key's map, publish the resulting delta to every replica
 *   (through `publish`: gossipsub in the daemon) and append it to the journal (persistence).
 * - Remote deltas queue in a bounded inbound queue and are joined in batches; a full queue
 *   drops and counts, leaving the repair to anti-entropy.
 * - Subscribers get every matching key first, then one event per real change with the old and
 *   new value; changes within one event-loop turn are coalesced, and a join that changes
 *   nothing fires nothing.
 * - Anti-entropy (anti-entropy.ts) reads digests and states here and applies repairs.
 *
 * The store does no I/O itself: time comes from a Clock, the network from `publish`/`receive`,
 * the disk from a Journal.
 */
import type { Clock, TimerHandle } from '../common/index.js';
import { type CausalContext, type CrdtError, encodeCrdt, ORMap, plainEquals, type LwwMarker, type MapMutator, type PlainValue } from '../crdt/index.js';
import { fmix32, hashString32 } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { AE_BUCKETS, AE_SUB_BUCKETS, checkKey, decodeDelta, encodeDelta } from './codec.js';
import { kvConfig, type KvConfig } from './config.js';
import { KvError, KvErrorCode } from './errors.js';

export type KvValue = Record<string, unknown>;

export interface KvChange {
  readonly key: string;
  /** The value before the change (undefined: the key did not exist or was empty). */
  readonly old: KvValue | undefined;
  /** The value after it (undefined: removed). */
  readonly new: KvValue | undefined;
  /** True for the events a new subscription receives for the keys that already exist. */
  readonly initial: boolean;
}

export type KvSelector = string | ((key: string) => boolean);

/** One field of a key whose value a remote write would change (undefined: absent). */
export interface FieldChange {
  readonly name: string;
  readonly before: unknown;
  readonly after: unknown;
}

/**
 * A check of remote writes (gossiped deltas and anti-entropy repairs) to some keys: how a
 * replica refuses one member's write over another member's fields. Any holder of the cluster
 * key can publish a delta naming any key and any actor, so the CRDT alone cannot tell who
 * wrote what; the check looks at what the write would change, field by field.
 */
export interface KvAdmission {
  /** Whether remote writes to `key` are checked. Called for every remote delta: keep it cheap. */
  guards(key: string): boolean;
  /** Why a write changing these fields of `key` may not be applied, or undefined when it may. */
  refuse(key: string, changes: readonly FieldChange[]): string | undefined;
}

/**
 * Refused writes kept to be checked again (`readmit`) when what the check knows changes: a
 * replica that has not yet learnt of a release refuses the removal of the released agent's
 * entries, then takes it once it knows. Oldest dropped first; anti-entropy brings back any
 * write still wanted.
 */
const MAX_HELD_REFUSED = 256;

/** How journal records are applied on recovery. */
export type JournalRecordKind = 'join' | 'context';

/** Persistence, as the store sees it (persistence.ts implements it on a data directory). */
export interface Journal {
  /**
   * Records a change of `key`: a CRDT to join, or a context to merge. Returns a sequence number.
   * `remote`: the change came from another replica (which still holds it), so it may wait
   * longer for its fsync than this replica's own updates.
   */
  append(key: string, kind: JournalRecordKind, crdt: ORMap, remote?: boolean): number;
  /** Calls `callback` once record `seq` is as durable as the fsync policy makes it. */
  whenDurable(seq: number, callback: () => void): void;
}

export interface KvStoreOptions {
  /** This replica's actor id in CRDT dots and LWW markers (the node name). */
  actor: string;
  config?: KvConfig;
  clock: Clock;
  /** Sends an encoded delta to every other replica (best effort). */
  publish?: (message: Uint8Array) => void;
  journal?: Journal;
  logger?: Logger;
  /** State recovered from the data directory. */
  initial?: ReadonlyMap<string, ORMap>;
  /**
   * Told, for every remote delta that changed something, the milliseconds since its origin
   * published it (wall clocks of two nodes: skew included, negative values clamped to 0).
   */
  observePropagationMs?: (delayMs: number) => void;
  /**
   * Told when a refused remote write is held for a later `readmit` (see MAX_HELD_REFUSED): the
   * owner checks held writes again only while some are held, instead of polling an empty list.
   */
  onRefusalHeld?: () => void;
}

export interface UpdateResult {
  readonly delta: ORMap;
  /** The key's value after the update (undefined when now empty). */
  readonly value: KvValue | undefined;
  /** Journal sequence number of the delta (for `whenDurable`), or -1 without a journal. */
  readonly seq: number;
}

export interface KvStats {
  localUpdates: number;
  remoteDeltasReceived: number;
  remoteDeltasApplied: number;
  /** Remote deltas that changed nothing (duplicates, already known). */
  remoteDeltasRedundant: number;
  /** Remote deltas dropped because the inbound queue was full. */
  inboundDropped: number;
  /** Remote deltas that failed to decode. */
  decodeErrors: number;
  /** Remote deltas for a new key beyond maxKeys: dropped. */
  keyLimitDrops: number;
  /** Remote writes to guarded keys refused by the admission check (see KvAdmission). */
  writesRefused: number;
  /** LWW writes with one marker and different values met in a join. */
  lwwConflicts: number;
  repairsApplied: number;
  subscriptionEvents: number;
}

interface KeyState {
  crdt: ORMap;
  /** An upper bound of the encoded size, kept without re-encoding on every change. */
  approxBytes: number;
  /** Cached digest; undefined when the state changed since. */
  digest: number | undefined;
  /** Anti-entropy tree position: level-1 bucket and level-2 bucket. */
  readonly bucket: number;
  readonly sub: number;
}

interface Subscription {
  readonly matches: (key: string) => boolean;
  readonly handler: (change: KvChange) => void;
  /** Still owes the initial events. */
  initial: boolean;
  active: boolean;
}

function emptyStats(): KvStats {
  return {
    localUpdates: 0,
    remoteDeltasReceived: 0,
    remoteDeltasApplied: 0,
    remoteDeltasRedundant: 0,
    inboundDropped: 0,
    decodeErrors: 0,
    keyLimitDrops: 0,
    writesRefused: 0,
    lwwConflicts: 0,
    repairsApplied: 0,
    subscriptionEvents: 0,
  };
}

/** The anti-entropy tree position of a key: [level-1 bucket, level-2 bucket]. */
export function treePosition(key: string): [number, number] {
  const h = hashString32(key);
  return [h % AE_BUCKETS, Math.floor(h / AE_BUCKETS) % AE_SUB_BUCKETS];
}

function newKeyState(key: string, crdt: ORMap, approxBytes: number): KeyState {
  const [bucket, sub] = treePosition(key);
  return { crdt, approxBytes, digest: undefined, bucket, sub };
}

export class KvStore {
  readonly actor: string;
  readonly config: KvConfig;
  readonly stats: KvStats = emptyStats();
  private readonly clock: Clock;
  private readonly publish: ((message: Uint8Array) => void) | undefined;
  private readonly observePropagationMs: ((delayMs: number) => void) | undefined;
  private readonly onRefusalHeld: (() => void) | undefined;
  private readonly journal: Journal | undefined;
  private readonly logger: Logger | undefined;
  private readonly states = new Map<string, KeyState>();
  /** Keys per level-1 bucket (keys are never dropped: removed ones keep their context). */
  private readonly byBucket: Set<string>[] = Array.from({ length: AE_BUCKETS }, () => new Set<string>());
  private readonly subscriptions = new Set<Subscription>();
  /** Keys changed this turn, with their value before the turn's first change (when someone watches). */
  private readonly pending = new Map<string, KvValue | undefined>();
  private flushTimer: TimerHandle | undefined;
  private readonly inbound: { bytes: Uint8Array; from: string }[] = [];
  private inboundTimer: TimerHandle | undefined;
  private lastMarkerTs = 0;
  private lastDropLogMs = -Infinity;
  private lastRefusalLogMs = -Infinity;
  private admission: KvAdmission | undefined;
  private readonly held: { key: string; crdt: ORMap; bytes: number }[] = [];
  private closed = false;

  constructor(options: KvStoreOptions) {
    if (typeof options.actor !== 'string' || options.actor.length === 0 || options.actor.length > 256) {
      throw new KvError(KvErrorCode.InvalidConfig, `kv actor ${JSON.stringify(options.actor)} is not valid; expected 1 to 256 characters`, {});
    }
    this.actor = options.actor;
    this.config = options.config ?? kvConfig();
    this.clock = options.clock;
    this.publish = options.publish;
    this.observePropagationMs = options.observePropagationMs;
    this.onRefusalHeld = options.onRefusalHeld;
    this.journal = options.journal;
    this.logger = options.logger;
    for (const [key, crdt] of options.initial ?? []) this.addKey(key, newKeyState(key, crdt, encodeCrdt(crdt).byteLength));
  }

  // ------------------------------------------------------------ reading

  /** The value of `key`; undefined when absent or empty (removed). */
  get(key: string): KvValue | undefined {
    const state = this.states.get(key);
    return state === undefined || state.crdt.isEmpty() ? undefined : state.crdt.value();
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Keys with a value, starting with `prefix`, sorted. */
  keys(prefix = ''): string[] {
    const out: string[] = [];
    for (const [key, state] of this.states) if (key.startsWith(prefix) && !state.crdt.isEmpty()) out.push(key);
    return out.sort();
  }

  /** Keys held, removed ones included (they keep their context). */
  get size(): number {
    return this.states.size;
  }

  /**
   * A marker for LWW writes: a hybrid logical timestamp (wall clock in microseconds, never
   * going backwards on this node) and this actor. Take one per update, outside the mutation.
   */
  marker(): LwwMarker {
    const ts = Math.max(Math.floor(this.clock.wallMs() * 1000), this.lastMarkerTs + 1);
    this.lastMarkerTs = ts;
    return { ts, actor: this.actor };
  }

  // ------------------------------------------------------------ writing

  /**
   * Applies `mutation` to the map at `key` (created by the first update), publishes the delta and
   * journals it. `mutation` is run twice (once on an empty scratch map to size the update), so it
   * must only call the mutator. Throws LASHUP_ERR_KV_INVALID_KEY, LASHUP_ERR_KV_TOO_MANY_KEYS,
   * LASHUP_ERR_KV_VALUE_TOO_LARGE (nothing is applied then), or a CRDT error for a bad value.
   */
  update(key: string, mutation: (map: MapMutator) => void): UpdateResult {
    this.checkOpen();
    checkKey(key);
    const existing = this.states.get(key);
    if (existing === undefined && this.states.size >= this.config.maxKeys) {
      throw new KvError(KvErrorCode.TooManyKeys, `cannot create key ${JSON.stringify(key)}: the store holds ${this.states.size} keys, the limit (kv.maxKeys)`, {
        key,
        maxKeys: this.config.maxKeys,
      });
    }
    // Size the update on a scratch map: what it writes is what it can add.
    const added = encodeCrdt(new ORMap().mutate(this.actor, mutation)).byteLength;
    const state = existing ?? newKeyState(key, new ORMap(), 0);
    let target = state.crdt;
    let approx = state.approxBytes + added;
    if (approx > this.config.maxValueBytes) {
      // Near the limit: apply to a copy and measure exactly before committing.
      target = state.crdt.clone();
      target.mutate(this.actor, mutation);
      approx = encodeCrdt(target).byteLength;
      if (approx > this.config.maxValueBytes) {
        throw new KvError(KvErrorCode.ValueTooLarge, `update of key ${JSON.stringify(key)} would make its value ${approx} bytes, above the limit of ${this.config.maxValueBytes} (kv.maxValueBytes)`, {
          key,
          bytes: approx,
          maxBytes: this.config.maxValueBytes,
        });
      }
    }
    const before = this.captureOld(key, state);
    const delta = target === state.crdt ? state.crdt.mutate(this.actor, mutation) : this.deltaBetween(state.crdt, target);
    state.crdt = target;
    state.approxBytes = approx;
    state.digest = undefined;
    if (existing === undefined) this.addKey(key, state);
    this.stats.localUpdates++;
    this.changed(key, before);
    const seq = this.journal?.append(key, 'join', delta) ?? -1;
    if (this.publish !== undefined && !delta.isBottom()) this.publish(encodeDelta(key, delta, this.clock.wallMs()));
    return { delta, value: state.crdt.isEmpty() ? undefined : state.crdt.value(), seq };
  }

  /** Removes every entry of `key` this replica has seen (a concurrent update elsewhere survives). */
  remove(key: string): UpdateResult {
    this.checkOpen();
    checkKey(key);
    const state = this.states.get(key);
    if (state === undefined || state.crdt.isEmpty()) return { delta: new ORMap(), value: undefined, seq: -1 };
    return this.update(key, (m) => {
      for (const name of state.crdt.names()) m.remove(name);
    });
  }

  /** Calls `callback` once journal record `seq` is durable (at once without a journal). */
  whenDurable(seq: number, callback: () => void): void {
    if (this.journal === undefined || seq < 0) callback();
    else this.journal.whenDurable(seq, callback);
  }

  /** The delta that turns `from` into `to` (to = from joined with a local mutation). */
  private deltaBetween(from: ORMap, to: ORMap): ORMap {
    const delta = to.unseenBy(from.context);
    delta.join(to.removalsFor(from.liveContext()));
    return delta;
  }

  // ------------------------------------------------------------ subscriptions

  /**
   * Watches keys starting with a prefix, or passing a predicate. The handler first receives every
   * matching key (`initial: true`), then one event per key per event-loop turn in which its value
   * really changed. Returns the unsubscribe function.
   */
  subscribe(selector: KvSelector, handler: (change: KvChange) => void): () => void {
    const matches = typeof selector === 'string' ? (key: string) => key.startsWith(selector) : selector;
    const subscription: Subscription = { matches, handler, initial: true, active: true };
    this.subscriptions.add(subscription);
    this.scheduleFlush();
    return () => {
      subscription.active = false;
      this.subscriptions.delete(subscription);
    };
  }

  private watched(key: string): boolean {
    for (const s of this.subscriptions) if (s.matches(key)) return true;
    return false;
  }

  /** The value before this turn's first change of `key`, when anybody watches it. */
  private captureOld(key: string, state: KeyState): KvValue | undefined {
    if (this.pending.has(key) || !this.watched(key)) return this.pending.get(key);
    return state.crdt.isEmpty() ? undefined : state.crdt.value();
  }

  private changed(key: string, old: KvValue | undefined): void {
    if (!this.pending.has(key)) this.pending.set(key, old);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined || this.closed) return;
    this.flushTimer = this.clock.setTimer(0, () => this.flush());
  }

  /** Delivers initial events to new subscriptions and coalesced change events to the rest. */
  private flush(): void {
    this.flushTimer = undefined;
    const changes = [...this.pending];
    this.pending.clear();
    const values = new Map<string, KvValue | undefined>();
    const valueAt = (key: string): KvValue | undefined => {
      if (!values.has(key)) values.set(key, this.get(key));
      return values.get(key);
    };
    for (const s of [...this.subscriptions]) {
      if (s.initial) {
        s.initial = false;
        for (const key of this.keys()) {
          if (!s.active || !s.matches(key)) continue;
          this.stats.subscriptionEvents++;
          s.handler({ key, old: undefined, new: valueAt(key), initial: true });
        }
        continue;
      }
      for (const [key, old] of changes) {
        if (!s.active || !s.matches(key)) continue;
        const now = valueAt(key);
        if (sameValue(old, now)) continue;
        this.stats.subscriptionEvents++;
        s.handler({ key, old, new: now, initial: false });
      }
    }
  }

  // ------------------------------------------------------------ admission of remote writes

  /**
   * Installs the check of remote writes (replacing any). Local updates are not checked: a
   * replica's own writes are its owner's business. The components that know who owns what
   * (allocations, identities) start after the store, hence a setter.
   */
  setAdmission(admission: KvAdmission | undefined): void {
    this.admission = admission;
  }

  /** Refused writes held for another check. */
  get heldRefused(): number {
    return this.held.length;
  }

  /**
   * Checks the held refused writes again (call when what the admission check knows changed);
   * those still refused stay held. Returns how many were applied.
   */
  readmit(): number {
    if (this.closed || this.held.length === 0) return 0;
    const again = this.held.splice(0);
    let applied = 0;
    for (const { key, crdt, bytes } of again) if (this.applyJoin(key, crdt, bytes) === true) applied++;
    return applied;
  }

  /** Why the admission check refuses joining `crdt` into `key` (undefined: no check, or it passes). */
  private refusal(key: string, state: KeyState | undefined, crdt: ORMap, bytes: number): string | undefined {
    const admission = this.admission;
    if (admission === undefined || !admission.guards(key)) return undefined;
    const changes = (state?.crdt ?? new ORMap()).previewJoin(crdt);
    if (changes.length === 0) return undefined;
    const reason = admission.refuse(key, changes);
    if (reason === undefined) return undefined;
    this.stats.writesRefused++;
    if (this.held.length >= MAX_HELD_REFUSED) this.held.shift();
    this.held.push({ key, crdt, bytes });
    this.onRefusalHeld?.();
    const now = this.clock.nowMs();
    if (now - this.lastRefusalLogMs >= 10_000) {
      this.lastRefusalLogMs = now;
      this.logger?.warn({ code: KvErrorCode.WriteRefused, key, fields: changes.map((c) => c.name).slice(0, 8), reason, refused: this.stats.writesRefused }, 'a remote write was refused');
    }
    return reason;
  }

  // ------------------------------------------------------------ remote deltas

  /**
   * Queues a delta received from another replica. A full queue drops it (counted; anti-entropy
   * repairs). Never throws for bad input: it is counted and logged when its turn comes.
   */
  receive(message: Uint8Array, from = 'unknown'): void {
    if (this.closed) return;
    this.stats.remoteDeltasReceived++;
    if (this.inbound.length >= this.config.maxInboundDeltas) {
      this.stats.inboundDropped++;
      this.logDrop(from, `inbound queue full (${this.config.maxInboundDeltas}, kv.maxInboundDeltas): delta dropped, anti-entropy will repair`);
      return;
    }
    this.inbound.push({ bytes: message, from });
    if (this.inboundTimer === undefined) this.inboundTimer = this.clock.setTimer(0, () => this.drainInbound());
  }

  /** Remote deltas waiting. */
  get inboundQueued(): number {
    return this.inbound.length;
  }

  private drainInbound(): void {
    this.inboundTimer = undefined;
    const batch = this.inbound.splice(0, this.config.inboundBatch);
    for (const { bytes, from } of batch) {
      let decoded;
      try {
        decoded = decodeDelta(bytes, this.config.maxValueBytes + 1024);
      } catch (err) {
        this.stats.decodeErrors++;
        this.logDrop(from, `bad delta dropped: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      const applied = this.applyJoin(decoded.key, decoded.delta, bytes.byteLength);
      if (applied === undefined) continue;
      if (applied) {
        this.stats.remoteDeltasApplied++;
        if (decoded.originWallMs !== undefined) this.observePropagationMs?.(Math.max(0, this.clock.wallMs() - decoded.originWallMs));
      } else this.stats.remoteDeltasRedundant++;
    }
    if (this.inbound.length > 0 && !this.closed) this.inboundTimer = this.clock.setTimer(0, () => this.drainInbound());
  }

  private logDrop(from: string, message: string): void {
    const now = this.clock.nowMs();
    if (now - this.lastDropLogMs < 10_000) return;
    this.lastDropLogMs = now;
    this.logger?.warn({ from, stats: this.stats }, message);
  }

  /**
   * Joins a CRDT into `key`. Returns true when the state changed, false when not, undefined
   * when dropped (a new key beyond maxKeys, or refused by the admission check).
   */
  private applyJoin(key: string, crdt: ORMap, encodedBytes: number): boolean | undefined {
    let state = this.states.get(key);
    if (this.refusal(key, state, crdt, encodedBytes) !== undefined) return undefined;
    if (state === undefined) {
      if (this.states.size >= this.config.maxKeys) {
        this.stats.keyLimitDrops++;
        this.logDrop('remote', `key ${JSON.stringify(key)} dropped: the store is at kv.maxKeys (${this.config.maxKeys})`);
        return undefined;
      }
      state = newKeyState(key, new ORMap(), 0);
      this.addKey(key, state);
    }
    const before = this.captureOld(key, state);
    const contextBefore = state.crdt.context.dotCount();
    const result = state.crdt.join(crdt);
    for (const conflict of result.conflicts) this.reportConflict(key, conflict);
    const grew = state.crdt.context.dotCount() !== contextBefore;
    if (result.changes === 0 && !grew) return false;
    state.approxBytes += encodedBytes;
    state.digest = undefined;
    if (result.changes > 0) this.changed(key, before);
    this.journal?.append(key, 'join', crdt, true);
    return true;
  }

  private reportConflict(key: string, conflict: CrdtError): void {
    this.stats.lwwConflicts++;
    this.logger?.warn({ key, err: conflict.message, conflicts: this.stats.lwwConflicts }, 'LWW conflict in a join: two writes share one marker');
  }

  // ------------------------------------------------------------ anti-entropy support

  /** Every key held (removed ones included), unsorted. */
  allKeys(): IterableIterator<string> {
    return this.states.keys();
  }

  /** Every key with its state, removed ones included (snapshots read this; do not mutate). */
  *entries(): IterableIterator<[string, ORMap]> {
    for (const [key, state] of this.states) yield [key, state.crdt];
  }

  /** @internal The state of `key` (anti-entropy reads it; do not mutate). */
  stateOf(key: string): ORMap | undefined {
    return this.states.get(key)?.crdt;
  }

  /** The digest of `key`'s state (cached until it changes), or undefined when absent. */
  digestOf(key: string): number | undefined {
    const state = this.states.get(key);
    if (state === undefined) return undefined;
    state.digest ??= state.crdt.digest();
    return state.digest;
  }

  /** An upper bound of `key`'s encoded size (0 when absent). */
  approxBytesOf(key: string): number {
    return this.states.get(key)?.approxBytes ?? 0;
  }

  private addKey(key: string, state: KeyState): void {
    this.states.set(key, state);
    (this.byBucket[state.bucket] as Set<string>).add(key);
  }

  /** Level-1 sums of key digests mixed with `salt` (a fresh salt per round: no stuck collisions). */
  bucketSums(salt: number): Uint32Array {
    const sums = new Uint32Array(AE_BUCKETS);
    for (const [key, state] of this.states) {
      sums[state.bucket] = ((sums[state.bucket] as number) + saltedDigest(this.digestOf(key) as number, salt)) >>> 0;
    }
    return sums;
  }

  /** Level-2 sums of one level-1 bucket. */
  subSums(bucket: number, salt: number): Uint32Array {
    const sums = new Uint32Array(AE_SUB_BUCKETS);
    for (const key of this.byBucket[bucket] ?? []) {
      const state = this.states.get(key) as KeyState;
      sums[state.sub] = ((sums[state.sub] as number) + saltedDigest(this.digestOf(key) as number, salt)) >>> 0;
    }
    return sums;
  }

  /** Keys in the level-2 buckets of `bucket` selected by `mask` (bit i: level-2 bucket i). */
  keysInLeaves(bucket: number, mask: number): string[] {
    const out: string[] = [];
    for (const key of this.byBucket[bucket] ?? []) if ((mask >> (this.states.get(key) as KeyState).sub) & 1) out.push(key);
    return out;
  }

  /**
   * Applies an anti-entropy repair of `key`: joins `delta` (what this replica lacked, and the
   * removals it had not seen) and merges the peer's `context`.
   */
  applyRepair(key: string, delta: ORMap, context: CausalContext, encodedBytes: number): void {
    if (this.closed) return;
    const joined = this.applyJoin(key, delta, encodedBytes);
    if (joined === undefined) return;
    const state = this.states.get(key) as KeyState;
    const before = state.crdt.context.dotCount();
    state.crdt.context.merge(context);
    if (state.crdt.context.dotCount() !== before) {
      state.digest = undefined;
      this.journal?.append(key, 'context', new ORMap(undefined, context.clone()), true);
    }
    this.stats.repairsApplied++;
  }

  /** Stops timers; later updates are refused with LASHUP_ERR_KV_CLOSED. */
  close(): void {
    this.closed = true;
    this.flushTimer?.cancel();
    this.inboundTimer?.cancel();
    this.inbound.length = 0;
  }

  private checkOpen(): void {
    if (this.closed) throw new KvError(KvErrorCode.Closed, 'the kv store is closed: the node is shutting down', {});
  }
}

function sameValue(a: KvValue | undefined, b: KvValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return plainEquals(a as PlainValue, b as PlainValue);
}

/** Mixes a 52-bit digest with a round's salt into 32 bits. */
export function saltedDigest(digest: number, salt: number): number {
  return fmix32((digest >>> 0) ^ Math.imul(Math.floor(digest / 4294967296), 0x9e3779b1) ^ salt);
}
