/**
 * Raft's durable state in a directory:
 *
 *   raft-state      term and vote, one record, replaced atomically (temp file, fsync, rename)
 *   raft-log        entries after the snapshot, one checksummed record each, appended
 *   raft-snapshot   the latest snapshot, one record, replaced atomically
 *
 * Every method returns only once its data is fsynced: Raft acknowledges nothing before that.
 * On load, a torn or corrupt tail of the log is truncated (and reported); a corrupt state or
 * snapshot file is an error, not something to guess around, since Raft's safety rests on it.
 */
import { Packr, Unpackr } from 'msgpackr';
import { frameRecord, readRecords, StorageError, writeFileAtomic, type StorageFs } from '../storage/index.js';
import { RaftError, RaftErrorCode } from './errors.js';
import type { LogEntry, NodeId, PersistentState, RaftStorage, Snapshot } from './types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

export interface LoadReport {
  /** Bytes cut off the end of the log (a torn last write). */
  truncatedBytes: number;
  entries: number;
}

export class FileRaftStorage implements RaftStorage {
  /** Byte offset where each in-log entry ends (parallel to `indexes`). */
  private ends: number[] = [];
  private indexes: number[] = [];
  private logBytes = 0;
  readonly report: LoadReport = { truncatedBytes: 0, entries: 0 };

  constructor(
    private readonly fs: StorageFs,
    private readonly dir: string,
  ) {
    fs.mkdirp(dir);
  }

  private path(name: string): string {
    return `${this.dir}/${name}`;
  }

  private readSingle(name: string): unknown[] | undefined {
    const data = this.fs.read(this.path(name));
    if (data === undefined) return undefined;
    const { records, validBytes } = readRecords(data);
    if (records.length !== 1 || validBytes !== data.length) {
      throw new RaftError(
        RaftErrorCode.Storage,
        `${this.path(name)} is corrupt (checksum or length); raft cannot safely guess its content: restore it from a backup, or remove this master's raft directory to rejoin as an empty member`,
        {
          path: this.path(name),
        },
      );
    }
    return unpackr.unpack(records[0] as Uint8Array) as unknown[];
  }

  private writeAtomically(name: string, payload: Uint8Array): void {
    writeFileAtomic(this.fs, this.path(name), frameRecord(payload));
  }

  load(): PersistentState {
    const state = this.readSingle('raft-state');
    const term = typeof state?.[0] === 'number' ? state[0] : 0;
    const votedFor = typeof state?.[1] === 'string' ? (state[1] as NodeId) : undefined;
    const snap = this.readSingle('raft-snapshot');
    const snapshot: Snapshot | undefined = snap === undefined ? undefined : { lastIndex: snap[0] as number, lastTerm: snap[1] as number, data: snap[2] as Uint8Array };
    const logPath = this.path('raft-log');
    const data = this.fs.read(logPath) ?? new Uint8Array(0);
    const { records, validBytes, ends } = readRecords(data);
    if (validBytes < data.length) {
      this.fs.truncate(logPath, validBytes);
      this.fs.fsync(logPath);
      this.report.truncatedBytes = data.length - validBytes;
    }
    const entries: LogEntry[] = [];
    records.forEach((record, i) => {
      const raw = unpackr.unpack(record) as unknown[];
      const entry: LogEntry = { index: raw[0] as number, term: raw[1] as number, command: raw[2] as Uint8Array };
      const previous = entries[entries.length - 1];
      if (previous !== undefined && entry.index !== previous.index + 1) {
        throw new RaftError(RaftErrorCode.Storage, `${logPath} holds entry ${entry.index} after ${previous.index}: the log is not contiguous`, { path: logPath });
      }
      entries.push(entry);
      this.indexes.push(entry.index);
      this.ends.push(ends[i] as number);
    });
    this.logBytes = validBytes;
    this.report.entries = entries.length;
    return { term, votedFor, entries: entries.filter((e) => snapshot === undefined || e.index > snapshot.lastIndex), snapshot };
  }

  saveTermAndVote(term: number, votedFor: NodeId | undefined): void {
    this.writeAtomically('raft-state', packr.pack([term, votedFor ?? null]));
  }

  replaceFrom(fromIndex: number, entries: readonly LogEntry[]): void {
    const logPath = this.path('raft-log');
    // Cut the file where entry `fromIndex` began.
    let keep = this.indexes.length;
    while (keep > 0 && (this.indexes[keep - 1] as number) >= fromIndex) keep--;
    if (keep < this.indexes.length) {
      const offset = keep === 0 ? 0 : (this.ends[keep - 1] as number);
      this.fs.truncate(logPath, offset);
      this.indexes.length = keep;
      this.ends.length = keep;
      this.logBytes = offset;
    }
    if (entries.length > 0) {
      const frames = entries.map((e) => frameRecord(packr.pack([e.index, e.term, e.command])));
      let at = this.logBytes;
      for (let i = 0; i < entries.length; i++) {
        at += (frames[i] as Uint8Array).length;
        this.indexes.push((entries[i] as LogEntry).index);
        this.ends.push(at);
      }
      const total = new Uint8Array(at - this.logBytes);
      let offset = 0;
      for (const f of frames) {
        total.set(f, offset);
        offset += f.length;
      }
      this.fs.append(logPath, total);
      this.logBytes = at;
    }
    this.fs.fsync(logPath);
    if (this.indexes.length === entries.length && entries.length > 0) this.fs.fsyncDir(this.dir);
  }

  saveSnapshot(snapshot: Snapshot): void {
    this.writeAtomically('raft-snapshot', packr.pack([snapshot.lastIndex, snapshot.lastTerm, snapshot.data]));
    // Rewrite the log without what the snapshot covers (atomically, so a crash keeps one or the other).
    const logPath = this.path('raft-log');
    const data = this.fs.read(logPath) ?? new Uint8Array(0);
    const { records } = readRecords(data);
    const kept: Uint8Array[] = [];
    this.indexes = [];
    this.ends = [];
    let at = 0;
    for (const record of records) {
      const raw = unpackr.unpack(record) as unknown[];
      if ((raw[0] as number) <= snapshot.lastIndex) continue;
      const frame = frameRecord(record);
      kept.push(frame);
      at += frame.length;
      this.indexes.push(raw[0] as number);
      this.ends.push(at);
    }
    const total = new Uint8Array(at);
    let offset = 0;
    for (const f of kept) {
      total.set(f, offset);
      offset += f.length;
    }
    const tmp = `${logPath}.tmp`;
    try {
      this.fs.write(tmp, total);
      this.fs.fsync(tmp);
      this.fs.rename(tmp, logPath);
      this.fs.fsyncDir(this.dir);
    } catch (err) {
      if (err instanceof StorageError) throw new RaftError(RaftErrorCode.Storage, `compacting ${logPath} failed: ${err.message}`, { path: logPath }, { cause: err });
      throw err;
    }
    this.logBytes = at;
  }
}
