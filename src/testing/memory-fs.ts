/**
 * An in-memory file system that remembers what was made durable, so that tests and simulations
 * can crash it: `crash(rng)` keeps each file's fsynced bytes plus a random prefix of what was
 * written after (a torn write, sometimes with garbage at the tear), and forgets directory
 * changes (creations, renames, removals) not yet made durable by fsyncDir, each with some chance.
 * Background fsyncs complete at once unless `deferSyncs` is set; then they wait for
 * `completeSyncs()` (a slow disk), and a crash or kill forgets them (their callbacks never run).
 * Paths are plain strings ("dir/name"); directories are implied by the files in them.
 */
import { concatBytes, type Rng } from '../common/index.js';
import { StorageError } from '../storage/errors.js';
import type { StorageFs } from '../storage/fs.js';

interface FileNode {
  /** Current content. */
  data: Uint8Array;
  /** Content at the last fsync. */
  durable: Uint8Array;
}

function dirOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at < 0 ? '' : path.slice(0, at);
}

export class MemoryFs implements StorageFs {
  /** path -> file, as the process sees it. */
  private files = new Map<string, FileNode>();
  /** path -> file, as a crash would leave the directory entries. */
  private durableEntries = new Map<string, FileNode>();
  /** Operations counted, for tests that crash "between any two writes". */
  writes = 0;
  /** When set, the write with this number fails with EIO (a full or failing disk). */
  failWriteAt: number | undefined;
  /** While set, every write fails with this errno (an immutable directory, a full disk). */
  failAllWrites: string | undefined;
  /** While set, background fsyncs wait for completeSyncs() instead of completing at once. */
  deferSyncs = false;
  /** When set, the next background fsync to complete fails with EIO (then it is cleared). */
  failNextSync = false;
  private pendingSyncs: { path: string; file: FileNode; data: Uint8Array; done: (err: StorageError | undefined) => void }[] = [];

  mkdirp(): void {
    // Directories are implied.
  }

  list(dir: string): string[] {
    const prefix = dir === '' ? '' : `${dir}/`;
    const out: string[] = [];
    for (const path of this.files.keys()) if (path.startsWith(prefix) && !path.slice(prefix.length).includes('/')) out.push(path.slice(prefix.length));
    return out.sort();
  }

  read(path: string): Uint8Array | undefined {
    const file = this.files.get(path);
    return file === undefined ? undefined : file.data.slice();
  }

  private countWrite(path: string): void {
    this.writes++;
    if (this.failWriteAt !== undefined && this.writes === this.failWriteAt) {
      throw new StorageError(`write to ${path} failed: EIO (injected)`, { path, errno: 'EIO' });
    }
    if (this.failAllWrites !== undefined) throw new StorageError(`write to ${path} failed: ${this.failAllWrites} (injected)`, { path, errno: this.failAllWrites });
  }

  append(path: string, data: Uint8Array): void {
    this.countWrite(path);
    const file = this.files.get(path);
    if (file === undefined) this.files.set(path, { data: data.slice(), durable: new Uint8Array(0) });
    else file.data = concatBytes([file.data, data]);
  }

  write(path: string, data: Uint8Array): void {
    this.countWrite(path);
    this.files.set(path, { data: data.slice(), durable: new Uint8Array(0) });
  }

  truncate(path: string, length: number): void {
    this.countWrite(path);
    const file = this.files.get(path);
    if (file !== undefined) file.data = file.data.slice(0, length);
  }

  fsync(path: string): void {
    const file = this.files.get(path);
    if (file !== undefined) file.durable = file.data.slice();
  }

  fsyncInBackground(path: string, done: (err: StorageError | undefined) => void): void {
    const file = this.files.get(path);
    if (file === undefined) {
      done(new StorageError(`fsync ${path} failed: ENOENT`, { op: 'fsync', path, errno: 'ENOENT' }));
      return;
    }
    // What the fsync covers is what was written before it was asked for.
    this.pendingSyncs.push({ path, file, data: file.data.slice(), done });
    if (!this.deferSyncs) this.completeSyncs();
  }

  /** Completes the background fsyncs asked for so far, in order; returns how many. */
  completeSyncs(): number {
    const syncs = this.pendingSyncs;
    this.pendingSyncs = [];
    for (const sync of syncs) {
      if (this.failNextSync) {
        this.failNextSync = false;
        sync.done(new StorageError(`fsync ${sync.path} failed: EIO (injected)`, { op: 'fsync', path: sync.path, errno: 'EIO' }));
        continue;
      }
      // Only bytes the file still begins with become durable (a file truncated since keeps its
      // own durable bytes), and never fewer than an fsync made durable since.
      const current = sync.file.data;
      const prefix = current.length >= sync.data.length && sync.data.every((b, i) => b === current[i]);
      if (prefix && sync.file.durable.length < sync.data.length) sync.file.durable = sync.data;
      sync.done(undefined);
    }
    return syncs.length;
  }

  /** Background fsyncs asked for and not completed. */
  get syncsPending(): number {
    return this.pendingSyncs.length;
  }

  fsyncDir(dir: string): void {
    for (const path of [...this.durableEntries.keys()]) if (dirOf(path) === dir && !this.files.has(path)) this.durableEntries.delete(path);
    for (const [path, file] of this.files) if (dirOf(path) === dir) this.durableEntries.set(path, file);
  }

  rename(from: string, to: string): void {
    this.countWrite(from);
    const file = this.files.get(from);
    if (file === undefined) throw new StorageError(`rename ${from} failed: ENOENT`, { path: from, errno: 'ENOENT' });
    this.files.delete(from);
    this.files.set(to, file);
  }

  remove(path: string): void {
    this.countWrite(path);
    this.files.delete(path);
  }

  /**
   * A power loss (or a kill in the middle of a write): every file falls back to its durable
   * bytes plus a random prefix of the rest, sometimes followed by a few garbage bytes; every
   * directory change not made durable survives or not, at random.
   */
  crash(rng: Rng): void {
    const entries = new Map<string, FileNode>();
    const candidates = new Map<string, FileNode>(this.durableEntries);
    for (const [path, file] of this.files) if (!candidates.has(path) && rng.chance(0.5)) candidates.set(path, file);
    for (const path of this.durableEntries.keys()) if (!this.files.has(path) && rng.chance(0.5)) candidates.delete(path);
    for (const [path, file] of candidates) {
      let data = file.durable;
      const current = file.data;
      const extends_ = current.length > data.length && current.subarray(0, data.length).every((b, i) => b === data[i]);
      if (extends_) {
        const kept = rng.int(current.length - data.length + 1);
        data = current.slice(0, data.length + kept);
        if (kept > 0 && rng.chance(0.3)) {
          const garbage = new Uint8Array(1 + rng.int(8));
          for (let i = 0; i < garbage.length; i++) garbage[i] = rng.int(256);
          data = concatBytes([data.slice(0, data.length - Math.min(kept, garbage.length)), garbage]);
        }
      }
      entries.set(path, { data: data.slice(), durable: data.slice() });
    }
    this.files = entries;
    this.durableEntries = new Map(entries);
    this.pendingSyncs = [];
  }

  /** A process kill without power loss: everything written stays (the kernel has it). */
  kill(): void {
    for (const file of this.files.values()) file.durable = file.data.slice();
    this.durableEntries = new Map(this.files);
    this.pendingSyncs = [];
  }
}
