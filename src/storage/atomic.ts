/**
 * Replacing a file so that a crash at any moment leaves either the old content or the new one,
 * and the new one survives a power loss once this returns: write a temporary file, fsync it,
 * rename it over the target, fsync the directory (the rename is an entry of the directory).
 * Before this helper the daemon had four hand-written copies, and only one of them fsynced: a
 * power loss right after writing the peer key, the agent's lease or a conflist could leave an
 * empty file behind the new name.
 */
import type { StorageFs } from './fs.js';

export interface AtomicWriteOptions {
  /** Mode of the file (default 0o600). */
  mode?: number;
  /** Mode of directories created on the way (default 0o700). */
  dirMode?: number;
}

/** The directory part of a '/'-separated path. */
export function parentDir(path: string): string {
  const at = path.lastIndexOf('/');
  return at < 0 ? '.' : at === 0 ? '/' : path.slice(0, at);
}

/** Replaces `path` with `data` atomically and durably. Throws LASHUP_ERR_STORAGE. */
export function writeFileAtomic(fs: StorageFs, path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): void {
  const dir = parentDir(path);
  fs.mkdirp(dir, options.dirMode);
  const tmp = `${path}.tmp`;
  fs.write(tmp, typeof data === 'string' ? new TextEncoder().encode(data) : data, options.mode);
  fs.fsync(tmp);
  fs.rename(tmp, path);
  fs.fsyncDir(dir);
}
