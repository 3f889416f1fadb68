#!/usr/bin/env node
/** Entry point of the `lashup-ipam` CNI plugin executable. */
import { connect } from 'node:net';
import { runPlugin, type Ask } from './plugin.js';

const ask: Ask = (socketPath, request) =>
  new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let text = '';
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 10 s')), 10_000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as Record<string, unknown>);
      } catch {
        reject(new Error('the daemon sent an unreadable answer'));
      }
    });
  });

let stdin = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) stdin += chunk as string;
const out = await runPlugin(process.env, stdin, ask);
process.stdout.write(out.stdout);
process.exitCode = out.code;
