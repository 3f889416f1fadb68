/**
 * Running the bundled program (one CommonJS file, see tools/bundle.mjs) from a V8 code cache: the
 * bytecode of its functions, made at build time, so that a starting process does not compile
 * them again. Node 20 has no module compile cache (22 has), and ES modules cannot take V8 cached
 * data, hence one script through `vm.Script` with `cachedData`.
 *
 * Measured on this machine (a master's `lashup run` until "lashup daemon started", 12 starts
 * each, interleaved, CPU median): the ES module bundle 340 ms; this file without a cache 330 ms;
 * with a cache made after `--version` 250 ms; with the build's cache (made after a master and an
 * agent started, joined and leased, see warm-up.ts) 220 ms. A new agent pays this on the path
 * of "process spawn -> routes everywhere", and a cluster starting on shared cores once per node.
 *
 * The cache file is the SHA-256 of the program's source, then V8's data. V8 itself rejects data
 * from another V8 version or other V8 flags (`--max-semi-space-size` counts: the build makes the
 * cache with the daemon's flags, runtime-flags.ts), but it checks only the source's *length*:
 * data made for another build of the same length would be taken, and run the wrong bytecode.
 * The hash makes that impossible (about 1 ms per start for the 2 MB source).
 *
 * Nothing here writes at run time: the cache is the build's (the install directory is not the
 * daemon's to write), and a start without a usable one compiles as before.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/**
 * What became of the cache at start: used; missing (no file); stale (made for another source);
 * rejected (V8 refused it: another Node or other flags); unreadable (the file could not be read).
 */
export type CodeCacheResult = 'used' | 'missing' | 'stale' | 'rejected' | 'unreadable';

export interface LoadedProgram {
  /** The program's `module.exports`. */
  exports: Record<string, unknown>;
  codeCache: CodeCacheResult;
  /** The compiled script: `writeCodeCache` serializes what it has compiled so far. */
  script: Script;
  sourceSha256: Buffer;
}

const HASH_BYTES = 32;

/** The CommonJS wrapper Node puts around a module; the cache is made for the wrapped text. */
function wrap(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) { ${source}\n});`;
}

function readCache(cacheFile: string, sourceSha256: Buffer): { data?: Buffer; result?: CodeCacheResult } {
  let file: Buffer;
  try {
    file = readFileSync(cacheFile);
  } catch (err) {
    return { result: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable' };
  }
  if (file.length <= HASH_BYTES || !file.subarray(0, HASH_BYTES).equals(sourceSha256)) return { result: 'stale' };
  return { data: file.subarray(HASH_BYTES) };
}

/**
 * Compiles `file` (a CommonJS program) with the code cache in `cacheFile` when it is usable, runs
 * it as a module, and returns its exports. The source is not kept beyond compilation (V8 holds
 * its own copy): a reference here held another 2 MB for the process's life.
 */
export function loadProgram(file: string, cacheFile: string): LoadedProgram {
  const { script, sourceSha256, codeCache } = compile(file, cacheFile);
  const module = { exports: {} as Record<string, unknown> };
  const run = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  run.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return { exports: module.exports, codeCache, script, sourceSha256 };
}

function compile(file: string, cacheFile: string): { script: Script; sourceSha256: Buffer; codeCache: CodeCacheResult } {
  const source = readFileSync(file, 'utf8');
  const sourceSha256 = createHash('sha256').update(source).digest();
  const cache = readCache(cacheFile, sourceSha256);
  const script = new Script(wrap(source), { filename: file, ...(cache.data === undefined ? {} : { cachedData: cache.data }) });
  const codeCache: CodeCacheResult = cache.result ?? (script.cachedDataRejected === true ? 'rejected' : 'used');
  return { script, sourceSha256, codeCache };
}

/**
 * Writes the cache of what `program` has compiled so far (functions compiled lazily included, so
 * call it after exercising the program), through a temporary file and a rename: a reader never
 * sees half a file.
 */
export function writeCodeCache(program: LoadedProgram, cacheFile: string): number {
  const data = Buffer.concat([program.sourceSha256, program.script.createCachedData()]);
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, cacheFile);
  return data.length;
}
