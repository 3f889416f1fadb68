/**
 * A small client of the daemon's HTTP API for the CLI: over the unix socket (the default on the
 * node: no token, the file mode decides) or over TCP with the bearer token.
 */
import { request, type RequestOptions } from 'node:http';
import { CLIENT_HEADER } from '../daemon/index.js';

export class ApiUnreachable extends Error {
  readonly code = 'LASHUP_ERR_DAEMON_UNREACHABLE';
}

/** Where the daemon's API is. */
export type ApiEndpoint = { socketPath: string } | { host: string; port: number; token: string | undefined };

export interface ApiReply {
  status: number;
  body: unknown;
}

export function describeEndpoint(api: ApiEndpoint): string {
  return 'socketPath' in api ? api.socketPath : `${api.host}:${api.port}`;
}

function requestOptions(api: ApiEndpoint, method: string, path: string): RequestOptions {
  const headers: Record<string, string> = { [CLIENT_HEADER]: 'cli' };
  if ('socketPath' in api) return { socketPath: api.socketPath, method, path, headers };
  if (api.token !== undefined) headers['authorization'] = `Bearer ${api.token}`;
  return { host: api.host, port: api.port, method, path, headers };
}

function unreachable(api: ApiEndpoint, err: Error): ApiUnreachable {
  const hint = 'socketPath' in api ? ' (as root, or a member of api.socketGroup; or use --api HOST:PORT)' : '';
  return new ApiUnreachable(`cannot reach the daemon API at ${describeEndpoint(api)} (${err.message}); is lashup running?${hint}`);
}

export function call(api: ApiEndpoint, method: string, path: string, timeoutMs = 10_000): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const req = request({ ...requestOptions(api, method, path), timeout: timeoutMs }, (res) => {
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
    req.on('timeout', () => req.destroy(new ApiUnreachable(`the daemon API at ${describeEndpoint(api)} did not answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof ApiUnreachable ? err : unreachable(api, err)));
    req.end();
  });
}

/** Streams server-sent events from `path`, calling `onEvent` per event, until the connection ends. */
export function stream(api: ApiEndpoint, path: string, onEvent: (event: string, data: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(requestOptions(api, 'GET', path), (res) => {
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
    req.on('error', (err) => reject(unreachable(api, err)));
    req.end();
  });
}
