/**
 * Server-sent events on an HTTP response: the store watch (`/v1/kv/{key}?watch=1`) and the status
 * page's stream (`/ui/events`) share this. The response stays open until the client goes or the
 * server closes it; `close` is idempotent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EventStream {
  send(event: string, data: unknown): void;
  close(): void;
}

/** Starts the stream; `onClose` runs once, when the client goes or `close` is called. */
export function openEventStream(req: IncomingMessage, res: ServerResponse, onClose: () => void): EventStream {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  let open = true;
  const stream: EventStream = {
    send(event, data) {
      if (open) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    close() {
      if (!open) return;
      open = false;
      onClose();
      res.end();
    },
  };
  req.on('close', () => stream.close());
  return stream;
}
