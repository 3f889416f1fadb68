/**
 * A fresh process for the code cache tests (a cache is consumed at most once per script and
 * isolate): loads PROGRAM with CACHE, calls its `answer()`, optionally writes the cache, and
 * prints { codeCache, answer } as JSON.
 * Usage: code-cache-child.ts PROGRAM CACHE [write]
 */
import { loadProgram, writeCodeCache } from '../../src/cli/code-cache.js';

const [program, cache, mode] = process.argv.slice(2) as [string, string, string | undefined];
const loaded = loadProgram(program, cache);
const answer = (loaded.exports['answer'] as () => number)();
if (mode === 'write') writeCodeCache(loaded, cache);
process.stdout.write(JSON.stringify({ codeCache: loaded.codeCache, answer }));
