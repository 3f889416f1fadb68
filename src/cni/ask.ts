/** The plugin's side of the daemon socket: one request line out, one reply line back. */
import { connect } from 'node:net';
import type { Ask } from './plugin.js';

export const askSocket: Ask = (socketPath, request) =>
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
