/** A small client of the daemon's HTTP API for the CLI. */
import { request } from 'node:http';
import { CLIENT_HEADER } from '../daemon/index.js';

export class ApiUnreachable extends Error {
  readonly code = 'LASHUP_ERR_DAEMON_UNREACHABLE';
}

export interface ApiReply {
  status: number;
  body: unknown;
}

export function call(api: { host: string; port: number }, method: string, path: string, timeoutMs = 10_000): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: api.host, port: api.port, method, path, timeout: timeoutMs, headers: { [CLIENT_HEADER]: 'cli' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // Plain text (metrics).
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new ApiUnreachable(`the daemon API at ${api.host}:${api.port} did not answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof ApiUnreachable ? err : new ApiUnreachable(`cannot reach the daemon API at ${api.host}:${api.port} (${err.message}); is lashup running?`)));
    req.end();
  });
}

/** Streams server-sent events from `path`, calling `onEvent` per event, until the connection ends. */
export function stream(api: { host: string; port: number }, path: string, onEvent: (event: string, data: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: api.host, port: api.port, method: 'GET', path, headers: { [CLIENT_HEADER]: 'cli' } }, (res) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => reject(new Error(text.trim())));
        return;
      }
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
          onEvent(event, data);
        }
      });
      res.on('end', () => resolve(0));
    });
    req.on('error', (err) => reject(new ApiUnreachable(`cannot reach the daemon API at ${api.host}:${api.port} (${err.message}); is lashup running?`)));
    req.end();
  });
}
