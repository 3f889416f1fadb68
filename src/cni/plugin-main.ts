#!/usr/bin/env node
/**
 * Entry point of the `lashup-ipam` CNI plugin executable. Stops reading past MAX_STDIN_BYTES and
 * answers with a CNI error: 600 MB on stdin once exhausted the heap and the plugin died with
 * empty stdout, which runtimes cannot interpret.
 */
import { askSocket } from './ask.js';
import { MAX_STDIN_BYTES, runPlugin } from './plugin.js';

const chunks: Buffer[] = [];
let total = 0;
for await (const chunk of process.stdin) {
  const bytes = chunk as Buffer;
  total += bytes.length;
  if (total > MAX_STDIN_BYTES) break;
  chunks.push(bytes);
}
if (total > MAX_STDIN_BYTES) process.stdin.destroy();
const stdin = total > MAX_STDIN_BYTES ? '' : Buffer.concat(chunks).toString('utf8');
const out = await runPlugin(process.env, stdin, askSocket, total);
process.stdout.write(out.stdout);
process.exitCode = out.code;
