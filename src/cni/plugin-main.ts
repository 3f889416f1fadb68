#!/usr/bin/env node
/** Entry point of the `lashup-ipam` CNI plugin executable. */
import { askSocket } from './ask.js';
import { runPlugin } from './plugin.js';

let stdin = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) stdin += chunk as string;
const out = await runPlugin(process.env, stdin, askSocket);
process.stdout.write(out.stdout);
process.exitCode = out.code;
