#!/usr/bin/env node
/** Entry point of the `lashup` command. */
import '../polyfills.js';
import { run } from './commands.js';

const code = await run(process.argv.slice(2), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
process.exit(code);
