#!/usr/bin/env node
/**
 * The built `lashup` command (dist/bundle/lashup.cjs): runs the bundled program (lashup-main.cjs,
 * bundle-main.ts) from the build's code cache (code-cache.ts). CommonJS, like the program, and it
 * imports nothing but Node's own modules: an ES module entry cost each start about 30 ms of CPU
 * (tools/bundle.mjs).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadProgram } from './code-cache.js';
import type { StartInfo } from './commands.js';

const here = dirname(fileURLToPath(import.meta.url));
const program = loadProgram(join(here, 'lashup-main.cjs'), join(here, 'lashup-main.cjs.cache'));
(program.exports['main'] as (argv: readonly string[], start: StartInfo) => void)(process.argv.slice(2), { codeCache: program.codeCache });
