/**
 * The plugin's side of the daemon socket: one request line out (then a half-close: the daemon
 * closes once it has answered), one reply line back.
 */
import { connect } from 'node:net';
import type { Ask } from './plugin.js';

/** Longest reply read, in bytes (replies are a few hundred bytes). */
const MAX_REPLY_BYTES = 1024 * 1024;

export const askSocket: Ask = (socketPath, request) =>
  new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let text = '';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(() => settle(() => reject(new Error('no answer within 10 s'))), 10_000);
    const finish = (): void => {
      const end = text.indexOf('\n');
      const line = end < 0 ? text : text.slice(0, end);
      try {
        const reply = JSON.parse(line) as unknown;
        if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) throw new Error('not an object');
        settle(() => resolve(reply as Record<string, unknown>));
      } catch {
        settle(() => reject(new Error('the daemon sent an unreadable answer')));
      }
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n') || text.length > MAX_REPLY_BYTES) finish();
    });
    socket.on('error', (err) => settle(() => reject(err)));
    socket.on('end', finish);
  });
