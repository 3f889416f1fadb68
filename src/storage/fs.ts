/**
 * The file operations persistence needs, as an interface: the daemon uses the real file system
 * (`NodeFs`), tests and simulations an in-memory one that can lose what was not fsynced
 * (`MemoryFs`), which is how "a process killed between any two writes" is tested.
 *
 * Synchronous on purpose: writes are small and batched by group commit, and a synchronous
 * append has no window where a later write overtakes an earlier one. The one exception is
 * `fsyncInBackground`: an fsync only waits for the disk, and on a busy disk that is 5-80 ms, so
 * the kv journal's group commit runs it off the event loop (its order needs nothing more: an
 * fsync covers every write made before it was called).
 */
import * as fs from 'node:fs';
import { StorageError } from './errors.js';

export interface StorageFs {
  /** Creates the directory (and parents) when missing, with `mode` (default 0o700). */
  mkdirp(dir: string, mode?: number): void;
  /** File names in `dir` (not paths). */
  list(dir: string): string[];
  /** The whole file, or undefined when it does not exist. */
  read(path: string): Uint8Array | undefined;
  /** Appends, creating the file when missing. */
  append(path: string, data: Uint8Array): void;
  /** Creates or replaces the file with `data`; a new file gets `mode` (default 0o600). */
  write(path: string, data: Uint8Array, mode?: number): void;
  truncate(path: string, length: number): void;
  /** Makes the file's content durable. */
  fsync(path: string): void;
  /**
   * Makes the file's content durable without blocking the caller: `done` runs once every byte
   * written to the file before the call is durable, or with the error (LASHUP_ERR_STORAGE). It
   * may run before this returns.
   */
  fsyncInBackground(path: string, done: (err: StorageError | undefined) => void): void;
  /** Makes the directory's entries (creations, renames, removals) durable. */
  fsyncDir(dir: string): void;
  rename(from: string, to: string): void;
  remove(path: string): void;
}

function storageError(op: string, path: string, err: unknown): StorageError {
  const code = (err as { code?: string }).code ?? 'unknown';
  return new StorageError(`${op} ${path} failed: ${code} (${err instanceof Error ? err.message : String(err)})`, { op, path, errno: code }, { cause: err });
}

/** The real file system (node:fs; synchronous but for fsyncInBackground). Errors become LASHUP_ERR_STORAGE. */
export class NodeFs implements StorageFs {
  mkdirp(dir: string, mode = 0o700): void {
    try {
      fs.mkdirSync(dir, { recursive: true, mode });
    } catch (err) {
      throw storageError('mkdir', dir, err);
    }
  }

  list(dir: string): string[] {
    try {
      return fs.readdirSync(dir);
    } catch (err) {
      throw storageError('list', dir, err);
    }
  }

  read(path: string): Uint8Array | undefined {
    try {
      return new Uint8Array(fs.readFileSync(path));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw storageError('read', path, err);
    }
  }

  append(path: string, data: Uint8Array): void {
    try {
      fs.appendFileSync(path, data, { mode: 0o600 });
    } catch (err) {
      throw storageError('append', path, err);
    }
  }

  write(path: string, data: Uint8Array, mode = 0o600): void {
    try {
      fs.writeFileSync(path, data, { mode });
    } catch (err) {
      throw storageError('write', path, err);
    }
  }

  truncate(path: string, length: number): void {
    try {
      fs.truncateSync(path, length);
    } catch (err) {
      throw storageError('truncate', path, err);
    }
  }

  fsync(path: string): void {
    this.syncPath(path, 'r+');
  }

  fsyncInBackground(path: string, done: (err: StorageError | undefined) => void): void {
    // open, fsync and close each run on libuv's thread pool; the event loop only sees the
    // callbacks. A file opened anew is enough: fsync flushes the file, not the descriptor.
    fs.open(path, 'r+', (openErr, fd) => {
      if (openErr !== null) {
        done(storageError('fsync', path, openErr));
        return;
      }
      fs.fsync(fd, (syncErr) => {
        fs.close(fd, () => done(syncErr === null ? undefined : storageError('fsync', path, syncErr)));
      });
    });
  }

  fsyncDir(dir: string): void {
    this.syncPath(dir, 'r');
  }

  private syncPath(path: string, flags: string): void {
    let fd: number | undefined;
    try {
      fd = fs.openSync(path, flags);
      fs.fsyncSync(fd);
    } catch (err) {
      throw storageError('fsync', path, err);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (err) {
      throw storageError('rename', from, err);
    }
  }

  remove(path: string): void {
    try {
      fs.rmSync(path, { force: true });
    } catch (err) {
      throw storageError('remove', path, err);
    }
  }
}
