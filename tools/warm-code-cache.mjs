/**
 * `npm run build` step 3 (tools/bundle.mjs runs it with the daemon's Node flags): runs the bundled
 * program's warm-up (src/cli/warm-up.ts) and writes its V8 code cache beside it
 * (dist/bundle/lashup-main.cjs.cache, see src/cli/code-cache.ts).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadProgram, writeCodeCache } from '../dist/src/cli/code-cache.js';

const bundle = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bundle');
const cacheFile = join(bundle, 'lashup-main.cjs.cache');
const program = loadProgram(join(bundle, 'lashup-main.cjs'), cacheFile);
const leased = await program.exports.warmUp();
if (!leased) console.warn('warm-code-cache: the warm-up agent got no lease; the cache covers less of a start');
writeCodeCache(program, cacheFile);
process.exit(0);
