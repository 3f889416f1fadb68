/**
 * Request/response over reused streams: one long-lived stream per destination and protocol,
 * many requests in flight on it, each with a time limit and an optional abort signal. Opening a
 * stream costs a round trip or more (a libp2p dial 25-50 ms, a new stream 1-2 ms); a reused one
 * answers in a fraction of a millisecond (STACK.md). Runs on any StreamTransport (simulated too).
 *
 * Frames (msgpack): [0, id, request] | [1, id, response] | [2, id, error message].
 * A stream that fails fails every request in flight on it; the next request opens a new one.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { Clock, TimerHandle } from '../common/index.js';
import { TransportError, TransportErrorCode } from './errors.js';
import type { Address, Stream, StreamTransport } from './transport.js';

const REQUEST = 0;
const RESPONSE = 1;
const ERROR = 2;
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

export type RpcCallback = (error: TransportError | null, response?: Uint8Array) => void;

export interface RpcRequestOptions {
  /** Time limit of this request, in ms (default: the client's). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Pending {
  callback: RpcCallback;
  timer: TimerHandle;
}

interface Channel {
  stream: Stream | undefined;
  waiting: { id: number; payload: Uint8Array }[];
  pending: Map<number, Pending>;
}

function decodeFrame(bytes: Uint8Array): [number, number, unknown] | undefined {
  try {
    const raw = unpackr.unpack(bytes) as unknown;
    if (!Array.isArray(raw) || raw.length !== 3 || typeof raw[0] !== 'number' || typeof raw[1] !== 'number') return undefined;
    return raw as [number, number, unknown];
  } catch {
    return undefined;
  }
}

export class RpcClient {
  private readonly channels = new Map<Address, Channel>();
  private nextId = 1;
  /** Frames from servers that did not parse: dropped. */
  badFrames = 0;

  constructor(
    private readonly streams: StreamTransport,
    private readonly clock: Clock,
    readonly protocol: string,
    private readonly defaultTimeoutMs = 5000,
  ) {}

  /** Sends `payload` to `to`; `callback` runs exactly once (unless aborted by the returned function). */
  request(to: Address, payload: Uint8Array, callback: RpcCallback, options: RpcRequestOptions = {}): () => void {
    const id = this.nextId++;
    let channel = this.channels.get(to);
    if (channel === undefined) {
      channel = { stream: undefined, waiting: [], pending: new Map() };
      this.channels.set(to, channel);
      this.openChannel(to, channel);
    }
    const ch = channel;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const settle = (error: TransportError | null, response?: Uint8Array): void => {
      const entry = ch.pending.get(id);
      if (entry === undefined) return;
      ch.pending.delete(id);
      entry.timer.cancel();
      options.signal?.removeEventListener('abort', onAbort);
      entry.callback(error, response);
    };
    const onAbort = (): void => settle(new TransportError(TransportErrorCode.Closed, `request ${id} to ${to} aborted`, { remote: to, protocol: this.protocol }));
    const timer = this.clock.setTimer(timeoutMs, () =>
      settle(new TransportError(TransportErrorCode.Timeout, `no response from ${to} (${this.protocol}) within ${timeoutMs} ms`, { remote: to, protocol: this.protocol })),
    );
    ch.pending.set(id, { callback, timer });
    if (options.signal?.aborted === true) {
      onAbort();
      return () => undefined;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const frame = packr.pack([REQUEST, id, payload]).slice();
    if (ch.stream?.isOpen === true) ch.stream.send(frame);
    else ch.waiting.push({ id, payload: frame });
    return () => {
      const entry = ch.pending.get(id);
      if (entry === undefined) return;
      ch.pending.delete(id);
      entry.timer.cancel();
      options.signal?.removeEventListener('abort', onAbort);
    };
  }

  /** The same as a Promise. */
  call(to: Address, payload: Uint8Array, options: RpcRequestOptions = {}): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.request(to, payload, (error, response) => (error === null ? resolve(response as Uint8Array) : reject(error)), options);
    });
  }

  private openChannel(to: Address, channel: Channel): void {
    this.streams.open(to, this.protocol, (error, stream) => {
      if (this.channels.get(to) !== channel) {
        stream?.close();
        return;
      }
      if (error !== null || stream === undefined) {
        this.failChannel(to, channel, error ?? new TransportError(TransportErrorCode.ConnectionReset, `no stream to ${to}`));
        return;
      }
      channel.stream = stream;
      stream.onMessage((message) => {
        const frame = decodeFrame(message.data);
        const entry = frame === undefined ? undefined : channel.pending.get(frame[1]);
        if (frame === undefined || (frame[0] !== RESPONSE && frame[0] !== ERROR)) {
          this.badFrames++;
          return;
        }
        if (entry === undefined) return; // timed out or aborted already
        channel.pending.delete(frame[1]);
        entry.timer.cancel();
        if (frame[0] === RESPONSE && frame[2] instanceof Uint8Array) entry.callback(null, frame[2]);
        else entry.callback(new TransportError(TransportErrorCode.ConnectionReset, `${to} failed the request: ${String(frame[2])}`, { remote: to, protocol: this.protocol }));
      });
      stream.onClose((closeError) =>
        this.failChannel(to, channel, closeError ?? new TransportError(TransportErrorCode.ConnectionReset, `stream to ${to} closed`, { remote: to, protocol: this.protocol })),
      );
      for (const { payload } of channel.waiting) stream.send(payload);
      channel.waiting = [];
    });
  }

  private failChannel(to: Address, channel: Channel, error: TransportError): void {
    if (this.channels.get(to) === channel) this.channels.delete(to);
    channel.stream?.close();
    const pending = [...channel.pending.values()];
    channel.pending.clear();
    for (const entry of pending) {
      entry.timer.cancel();
      entry.callback(error);
    }
  }

  close(): void {
    for (const [to, channel] of [...this.channels]) this.failChannel(to, channel, new TransportError(TransportErrorCode.Closed, 'rpc client closed'));
  }
}

export type RpcHandler = (request: Uint8Array, from: Address, respond: (response: Uint8Array) => void, fail: (message: string) => void) => void;

/** Serves `protocol`: every request frame is handed to `handler`, which answers once. */
export class RpcServer {
  badFrames = 0;
  private readonly open = new Set<Stream>();

  constructor(
    private readonly streams: StreamTransport,
    readonly protocol: string,
    handler: RpcHandler,
  ) {
    streams.handle(protocol, (stream) => {
      this.open.add(stream);
      stream.onClose(() => this.open.delete(stream));
      stream.onMessage((message) => {
        const frame = decodeFrame(message.data);
        if (frame === undefined || frame[0] !== REQUEST || !(frame[2] instanceof Uint8Array)) {
          this.badFrames++;
          return;
        }
        const id = frame[1];
        let answered = false;
        const answer = (kind: number, body: unknown): void => {
          if (answered) return;
          answered = true;
          stream.send(packr.pack([kind, id, body]).slice());
        };
        try {
          handler(
            frame[2],
            stream.remoteAddress,
            (response) => answer(RESPONSE, response),
            (error) => answer(ERROR, error),
          );
        } catch (err) {
          answer(ERROR, err instanceof Error ? err.message : String(err));
        }
      });
    });
  }

  close(): void {
    this.streams.unhandle(this.protocol);
    for (const stream of this.open) stream.close();
    this.open.clear();
  }
}
