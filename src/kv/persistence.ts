/**
 * Durable storage of the replicated store in a data directory: a snapshot plus an append-only
 * delta log, every record checksummed.
 *
 *   <dir>/snapshot-<gen>   the whole store when generation <gen> began
 *   <dir>/log-<gen>        every change since, in order
 *
 * Record framing (both files): [length u32 LE][crc32 u32 LE][payload]. Log payloads are msgpack
 * [kind, key, crdt] (kind 1: join the CRDT, 2: merge its context); a snapshot is a header
 * record, one [key, crdt] record per key and a trailer record with the key count, so a snapshot
 * cut short is recognised as such.
 *
 * Durability: appends are buffered and written by group commit (fsync policy below); the store
 * learns a record is durable through `whenDurable`, after its fsync. In `interval` mode the fsync
 * runs in the background (libuv's thread pool): a busy disk takes 5-80 ms per fsync, and done on
 * the event loop it held back every packet, probe and route change of the daemon for that long
 * (the kv journal's fsync was 231 ms of a 7-node process's 3.8 s of work while 100 updates
 * crossed a 60-node cluster). Records written while one fsync runs are covered by the next,
 * which starts when it ends. A failed fsync re-appends the records it covered (replay is
 * idempotent) and tries again. On start, `open` loads the
 * newest valid snapshot (falling back to the previous generation when it is corrupt, whose log
 * is kept for exactly this) and replays the logs after it; a torn or corrupt tail of the current
 * log is truncated and logged. Replaying is joining CRDTs, so it is idempotent and order-free:
 * a record applied twice, or a log replayed over a snapshot that already holds it, is harmless.
 *
 * Compaction writes a new snapshot (to a temporary name, fsynced, then renamed) once the log
 * exceeds `compactAfterBytes`, starts a new log, and removes generations older than the
 * previous one.
 */
import { Packr, Unpackr } from 'msgpackr';
import { concatBytes, type Clock, type TimerHandle } from '../common/index.js';
import { decodeCrdt, encodeCrdt, ORMap } from '../crdt/index.js';
import type { Logger } from '../log/index.js';
import { frameRecord as frame, readRecords, writeFileAtomic, MAX_RECORD_BYTES, type StorageFs } from '../storage/index.js';
import type { Journal, JournalRecordKind } from './store.js';

export interface FsyncPolicy {
  /**
   * `always`: write and fsync at every append (durable before update() returns; slowest).
   * `interval`: group commit, write and fsync every `intervalMs` (default; up to intervalMs of
   * acknowledged-but-not-yet-durable updates, and `whenDurable` says when they are).
   * `never`: write every `intervalMs` without fsync (survives a process kill, not a power loss;
   * `whenDurable` then means "written to the kernel").
   */
  mode: 'always' | 'interval' | 'never';
  /** Group-commit interval in ms. Default 10: at most a hundred fsyncs a second. */
  intervalMs: number;
  /**
   * Group-commit interval for changes that came from other replicas, in ms (a local update in
   * the meantime commits them too). Default 1,000: they are still held by the replicas they
   * came from, and anti-entropy brings back what a crash lost; fsyncing each of them within
   * 10 ms cost every node up to a hundred blocking fsyncs a second while a cluster formed
   * (200 nodes, 40,000 remote entries).
   */
  remoteIntervalMs?: number;
}

export interface PersistenceOptions {
  fs: StorageFs;
  dir: string;
  clock: Clock;
  fsync?: FsyncPolicy;
  /** Log size that triggers a new snapshot, in bytes. Default 64 MiB. */
  compactAfterBytes?: number;
  logger?: Logger;
}

export interface RecoveryReport {
  /** The snapshot generation loaded, or -1 for none. */
  snapshotGeneration: number;
  /** Snapshots found unreadable (checksum, truncation) and skipped. */
  corruptSnapshots: number;
  recordsReplayed: number;
  /** Bytes cut off the end of the current log (a torn last write). */
  truncatedBytes: number;
  /** Records skipped in older logs after corruption. */
  skippedRecords: number;
  keys: number;
}

export interface PersistenceStats {
  recordsAppended: number;
  bytesWritten: number;
  /** fsyncs of the log that completed. */
  fsyncs: number;
  /** Time the log's fsyncs took, in ms, summed (with fsyncs: the mean). */
  fsyncMsTotal: number;
  /** The longest fsync of the log since start, in ms (a slow or failing disk). */
  fsyncMsMax: number;
  snapshots: number;
  /** Appends, fsyncs and snapshots that failed (their records are kept and written again). */
  writeErrors: number;
}

export const DEFAULT_FSYNC_POLICY: FsyncPolicy = { mode: 'interval', intervalMs: 10 };
const SNAPSHOT_MAGIC = 'lashup-kv-snapshot';
const FORMAT_VERSION = 1;
const KIND_CODES: Record<JournalRecordKind, number> = { join: 1, context: 2 };
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

function generationOf(name: string, prefix: string): number | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const digits = name.slice(prefix.length);
  return /^[0-9]{1,15}$/.test(digits) ? Number(digits) : undefined;
}

function pad(gen: number): string {
  return String(gen).padStart(9, '0');
}

function decodeState(bytes: unknown): ORMap {
  if (!(bytes instanceof Uint8Array)) throw new Error('a record holds no CRDT');
  const crdt = decodeCrdt(bytes, { maxBytes: MAX_RECORD_BYTES });
  if (!(crdt instanceof ORMap)) throw new Error(`a record holds a ${crdt.kind}, not an OR-map`);
  return crdt;
}

export class KvPersistence implements Journal {
  readonly stats: PersistenceStats = { recordsAppended: 0, bytesWritten: 0, fsyncs: 0, fsyncMsTotal: 0, fsyncMsMax: 0, snapshots: 0, writeErrors: 0 };
  private readonly fs: StorageFs;
  private readonly dir: string;
  private readonly clock: Clock;
  private readonly policy: FsyncPolicy;
  private readonly compactAfterBytes: number;
  private readonly logger: Logger | undefined;
  private generation: number;
  private logBytes: number;
  private buffer: Uint8Array[] = [];
  private bufferedSeq = 0;
  /** Newest record appended to the log file (durable or not). */
  private writtenSeq = 0;
  private durableSeq = 0;
  /** What was appended to the log and is not yet covered by an fsync that ended (kept to be re-appended should it fail). */
  private unsynced: Uint8Array[] = [];
  /** A background fsync is running. */
  private syncing = false;
  private nextSeq = 1;
  private readonly waiters: { seq: number; callback: () => void }[] = [];
  private timer: TimerHandle | undefined;
  private timerDueAtMs = 0;
  private snapshotSource: (() => Iterable<[string, ORMap]>) | undefined;
  private closed = false;
  /** The newest snapshot was unusable at open: write a good one at the next flush. */
  private compactPending = false;

  private constructor(options: PersistenceOptions, generation: number, logBytes: number) {
    this.fs = options.fs;
    this.dir = options.dir;
    this.clock = options.clock;
    this.policy = options.fsync ?? DEFAULT_FSYNC_POLICY;
    this.compactAfterBytes = options.compactAfterBytes ?? 64 * 1024 * 1024;
    this.logger = options.logger;
    this.generation = generation;
    this.logBytes = logBytes;
  }

  /**
   * Opens (creating when missing) the data directory and recovers the store's state. Never
   * fails for bad content (it is skipped, truncated and reported); fails with
   * LASHUP_ERR_STORAGE only when the directory cannot be read or written.
   */
  static open(options: PersistenceOptions): { persistence: KvPersistence; state: Map<string, ORMap>; report: RecoveryReport } {
    const { fs, dir } = options;
    fs.mkdirp(dir);
    const names = fs.list(dir);
    for (const name of names) if (name.endsWith('.tmp')) fs.remove(`${dir}/${name}`);
    const snapshots = names
      .map((n) => generationOf(n, 'snapshot-'))
      .filter((g): g is number => g !== undefined)
      .sort((a, b) => b - a);
    const logs = names
      .map((n) => generationOf(n, 'log-'))
      .filter((g): g is number => g !== undefined)
      .sort((a, b) => a - b);
    const report: RecoveryReport = { snapshotGeneration: -1, corruptSnapshots: 0, recordsReplayed: 0, truncatedBytes: 0, skippedRecords: 0, keys: 0 };
    const state = new Map<string, ORMap>();
    const join = (key: string, crdt: ORMap): void => {
      const existing = state.get(key);
      if (existing === undefined) state.set(key, crdt);
      else existing.join(crdt);
    };
    for (const gen of snapshots) {
      const loaded = KvPersistence.readSnapshot(fs.read(`${dir}/snapshot-${pad(gen)}`));
      if (loaded === undefined) {
        report.corruptSnapshots++;
        options.logger?.warn({ dir, generation: gen }, 'kv snapshot is corrupt or incomplete; falling back to the previous one');
        continue;
      }
      for (const [key, crdt] of loaded) state.set(key, crdt);
      report.snapshotGeneration = gen;
      break;
    }
    const base = report.snapshotGeneration;
    const current = Math.max(0, snapshots[0] ?? 0, logs[logs.length - 1] ?? 0);
    let currentLogBytes = 0;
    for (const gen of logs) {
      if (gen < base) continue;
      const path = `${dir}/log-${pad(gen)}`;
      const data = fs.read(path) ?? new Uint8Array(0);
      const { records, validBytes } = readRecords(data);
      for (const record of records) {
        try {
          const raw = unpackr.unpack(record) as unknown[];
          const crdt = decodeState(raw[2]);
          const key = raw[1];
          if (typeof key !== 'string') throw new Error('a record holds no key');
          if (raw[0] === KIND_CODES.context) {
            const existing = state.get(key);
            if (existing === undefined) state.set(key, new ORMap(undefined, crdt.context));
            else existing.context.merge(crdt.context);
          } else join(key, crdt);
          report.recordsReplayed++;
        } catch (err) {
          // A record whose checksum matched but whose content does not decode: a bug or a
          // format change, not a torn write. Skip it and say so; anti-entropy will repair.
          report.skippedRecords++;
          options.logger?.warn({ path, err: (err as Error).message }, 'kv log record skipped');
        }
      }
      if (validBytes < data.length) {
        if (gen === current) {
          fs.truncate(path, validBytes);
          fs.fsync(path);
          report.truncatedBytes += data.length - validBytes;
          options.logger?.warn({ path, truncatedBytes: data.length - validBytes, keptBytes: validBytes }, 'kv log had a torn tail; truncated');
        } else {
          report.skippedRecords++;
          options.logger?.warn({ path, offset: validBytes }, 'kv log of an older generation is corrupt after this offset; rest skipped');
        }
      }
      if (gen === current) currentLogBytes = validBytes;
    }
    report.keys = state.size;
    const persistence = new KvPersistence(options, current, currentLogBytes);
    // A fallback means the newest snapshot is unusable: write a good one as soon as possible.
    if (report.corruptSnapshots > 0) persistence.markCompactPending();
    return { persistence, state, report };
  }

  private static readSnapshot(data: Uint8Array | undefined): Map<string, ORMap> | undefined {
    if (data === undefined) return undefined;
    const { records, validBytes } = readRecords(data);
    if (validBytes !== data.length || records.length < 2) return undefined;
    try {
      const header = unpackr.unpack(records[0] as Uint8Array) as unknown[];
      if (header[0] !== SNAPSHOT_MAGIC || header[1] !== FORMAT_VERSION) return undefined;
      const trailer = unpackr.unpack(records[records.length - 1] as Uint8Array) as unknown[];
      if (trailer[0] !== 'end' || trailer[1] !== records.length - 2) return undefined;
      const out = new Map<string, ORMap>();
      for (const record of records.slice(1, -1)) {
        const raw = unpackr.unpack(record) as unknown[];
        if (typeof raw[0] !== 'string') return undefined;
        out.set(raw[0], decodeState(raw[1]));
      }
      return out;
    } catch {
      return undefined;
    }
  }

  private markCompactPending(): void {
    this.compactPending = true;
  }

  /** Where compaction reads the whole store from (the store's keys and states). */
  setSnapshotSource(source: () => Iterable<[string, ORMap]>): void {
    this.snapshotSource = source;
  }

  private get logPath(): string {
    return `${this.dir}/log-${pad(this.generation)}`;
  }

  append(key: string, kind: JournalRecordKind, crdt: ORMap, remote = false): number {
    const seq = this.nextSeq++;
    if (this.closed) return seq;
    this.buffer.push(frame(packr.pack([KIND_CODES[kind], key, encodeCrdt(crdt)])));
    this.bufferedSeq = seq;
    this.stats.recordsAppended++;
    if (this.policy.mode === 'always' && !remote) this.flush();
    else {
      const delayMs = remote ? Math.max(this.policy.intervalMs, this.policy.remoteIntervalMs ?? 1000) : this.policy.intervalMs;
      const dueAtMs = this.clock.nowMs() + delayMs;
      // A local update brings a pending (remote) commit forward; never pushes one back.
      if (this.timer === undefined || dueAtMs < this.timerDueAtMs) {
        this.timer?.cancel();
        this.timerDueAtMs = dueAtMs;
        this.timer = this.clock.setTimer(delayMs, () => this.flush());
      }
    }
    return seq;
  }

  whenDurable(seq: number, callback: () => void): void {
    if (seq <= this.durableSeq) callback();
    else this.waiters.push({ seq, callback });
  }

  /**
   * Writes what is buffered and, per policy, fsyncs it (`interval`: in the background; `always`:
   * before returning), then tells the waiters whose records are durable.
   */
  flush(): void {
    this.writeBuffered(this.policy.mode === 'always');
    if (!this.closed) this.compactIfDue();
  }

  /** Compacts when the log has outgrown compactAfterBytes or the newest snapshot was unusable. */
  private compactIfDue(): void {
    if ((this.logBytes >= this.compactAfterBytes || this.compactPending) && this.snapshotSource !== undefined) this.compact();
  }

  private writeBuffered(syncNow: boolean): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.buffer.length > 0) {
      const chunks = this.buffer;
      const seq = this.bufferedSeq;
      this.buffer = [];
      const data = concatBytes(chunks);
      const size = data.length;
      try {
        const created = this.logBytes === 0;
        this.fs.append(this.logPath, data);
        // A new log's name is made durable before any record in it is called durable (once per
        // generation, so it stays synchronous).
        if (created && this.policy.mode !== 'never') this.fs.fsyncDir(this.dir);
      } catch (err) {
        // The records stay unacknowledged (no durable callback); the state is still in memory
        // and on other replicas. Keep them for the next attempt.
        this.writeFailed(chunks, err, 'kv log write failed; will retry');
        return;
      }
      this.logBytes += size;
      this.stats.bytesWritten += size;
      this.writtenSeq = seq;
      if (this.policy.mode === 'never') this.durableSeq = seq;
      else this.unsynced.push(data);
    }
    // Synchronously also for records a background fsync still covers (close() must not leave
    // them to it).
    if (this.policy.mode !== 'never' && this.writtenSeq > this.durableSeq) {
      if (syncNow) this.syncNow();
      else this.syncInBackground();
    }
    this.notify();
  }

  /** Keeps `chunks` to be written again (before anything buffered since) and schedules a retry. */
  private writeFailed(chunks: Uint8Array[], err: unknown, message: string): void {
    this.stats.writeErrors++;
    this.buffer = [...chunks, ...this.buffer];
    this.logger?.error({ err: (err as Error).message, path: this.logPath }, message);
    if (!this.closed) {
      this.timer?.cancel();
      this.timerDueAtMs = this.clock.nowMs() + Math.max(100, this.policy.intervalMs);
      this.timer = this.clock.setTimer(Math.max(100, this.policy.intervalMs), () => this.flush());
    }
  }

  private recordFsync(startedAtMs: number): void {
    const tookMs = this.clock.nowMs() - startedAtMs;
    this.stats.fsyncs++;
    this.stats.fsyncMsTotal += tookMs;
    if (tookMs > this.stats.fsyncMsMax) this.stats.fsyncMsMax = tookMs;
  }

  /** fsyncs the log before returning: everything written so far is durable after it. */
  private syncNow(): void {
    const chunks = this.unsynced;
    this.unsynced = [];
    const startedAtMs = this.clock.nowMs();
    try {
      this.fs.fsync(this.logPath);
    } catch (err) {
      this.writeFailed(chunks, err, 'kv log fsync failed; its records will be written again');
      return;
    }
    this.recordFsync(startedAtMs);
    // A background fsync still running covers less than this one did.
    this.durableSeq = Math.max(this.durableSeq, this.writtenSeq);
  }

  /**
   * Starts an fsync of the log in the background unless one runs (its end starts the next).
   * Invariant: every record in `unsynced` has a seq above `durableSeq`, and all of them are in
   * the log file, so an fsync started now covers them and everything written before.
   */
  private syncInBackground(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    this.syncing = true;
    const chunks = this.unsynced;
    this.unsynced = [];
    const covered = this.writtenSeq;
    const startedAtMs = this.clock.nowMs();
    this.fs.fsyncInBackground(this.logPath, (err) => {
      this.syncing = false;
      if (err !== undefined) {
        // Whether any of it reached the disk is unknown: write it again (an fsync that ended
        // since, synchronously or after compaction's snapshot, may already cover it).
        if (covered > this.durableSeq) this.writeFailed(chunks, err, 'kv log fsync failed; its records will be written again');
      } else {
        this.recordFsync(startedAtMs);
        this.durableSeq = Math.max(this.durableSeq, covered);
      }
      if (!this.closed) this.syncInBackground();
      this.notify();
    });
  }

  private notify(): void {
    let kept = 0;
    const ready: (() => void)[] = [];
    for (const w of this.waiters) {
      if (w.seq <= this.durableSeq) ready.push(w.callback);
      else this.waiters[kept++] = w;
    }
    this.waiters.length = kept;
    for (const callback of ready) callback();
  }

  /** Writes a snapshot of the whole store as a new generation and starts a new log. */
  compact(): void {
    if (this.snapshotSource === undefined) return;
    // Everything buffered goes to the old log first (the snapshot holds it too; its waiters are
    // told once it is durable in either).
    this.writeBuffered(this.policy.mode === 'always');
    const next = this.generation + 1;
    const parts: Uint8Array[] = [frame(packr.pack([SNAPSHOT_MAGIC, FORMAT_VERSION, next]))];
    let count = 0;
    for (const [key, crdt] of this.snapshotSource()) {
      parts.push(frame(packr.pack([key, encodeCrdt(crdt)])));
      count++;
    }
    parts.push(frame(packr.pack(['end', count])));
    const data = concatBytes(parts);
    const size = data.length;
    try {
      writeFileAtomic(this.fs, `${this.dir}/snapshot-${pad(next)}`, data);
    } catch (err) {
      this.stats.writeErrors++;
      this.logger?.error({ err: (err as Error).message }, 'kv snapshot failed; keeping the current log');
      return;
    }
    this.generation = next;
    this.logBytes = 0;
    this.compactPending = false;
    this.stats.snapshots++;
    // The snapshot, fsynced, holds every record written so far: they are durable now, whatever
    // the old log's fsync still running does.
    this.unsynced = [];
    this.durableSeq = Math.max(this.durableSeq, this.writtenSeq);
    // Keep the previous generation (snapshot and log) as the fallback; older ones go.
    for (const name of this.fs.list(this.dir)) {
      const gen = generationOf(name, 'snapshot-') ?? generationOf(name, 'log-');
      if (gen !== undefined && gen < next - 1) this.fs.remove(`${this.dir}/${name}`);
    }
    this.fs.fsyncDir(this.dir);
    this.logger?.info({ generation: next, keys: count, bytes: size }, 'kv snapshot written');
    this.notify();
  }

  /** Writes and fsyncs what is left (before returning, in every mode but `never`) and stops; later appends are ignored. */
  close(): void {
    this.writeBuffered(true);
    this.compactIfDue();
    this.closed = true;
    this.timer?.cancel();
  }
}
