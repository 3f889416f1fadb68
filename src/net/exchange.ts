/**
 * One request/response conversation on a fresh stream, as the initiator: open with a deadline,
 * hand every message to the caller, and end exactly once, by success, by failure (open refused,
 * stream closed early, deadline passed, the caller's own verdict) or by abort.
 *
 * Membership syncs and kv anti-entropy rounds are both this shape; the bookkeeping (a single
 * verdict, the stream closed and untracked at the end, a late open closed at once) lives here
 * so that neither can get it subtly wrong on its own.
 */
import type { Clock, TimerHandle } from '../common/index.js';
import type { Address, ReceivedMessage, Stream, StreamTransport } from './transport.js';

export interface ExchangeOptions {
  streams: StreamTransport;
  clock: Clock;
  to: Address;
  protocol: string;
  /** The whole conversation must end within this many ms. */
  timeoutMs: number;
  /** Open streams are added here while the exchange runs (so a shutdown can close them). */
  track?: Set<Stream>;
  /** The stream is open: send the first message. */
  onOpen(stream: Stream, exchange: Exchange): void;
  /** A message arrived (never after the verdict). */
  onMessage(message: ReceivedMessage, stream: Stream, exchange: Exchange): void;
  /** The verdict: undefined on success, else why it failed (in words, with the cause). */
  onEnd(failure: ExchangeFailure | undefined): void;
}

/**
 * Why an exchange failed: `open` (no stream: unreachable, refused, the dial timed out),
 * `deadline` (open, but no verdict within timeoutMs), `closed` (the peer closed or reset the
 * stream first), `caller` (the caller's own verdict: a message it could not use).
 */
export type ExchangeFailureKind = 'open' | 'deadline' | 'closed' | 'caller';

export interface ExchangeFailure {
  kind: ExchangeFailureKind;
  message: string;
  cause: unknown;
}

export interface Exchange {
  readonly finished: boolean;
  /** Ends successfully (closes the stream). */
  succeed(): void;
  /** Ends with a failure. */
  fail(message: string, cause?: unknown): void;
}

/** Starts an exchange; returns its handle (also passed to every callback). */
export function startExchange(options: ExchangeOptions): Exchange {
  let finished = false;
  let stream: Stream | undefined;
  // Declared before use: a transport may call back synchronously, before open() returns.
  let timer: TimerHandle | undefined;
  let opening = true;
  let abortOpen: (() => void) | undefined;
  const end = (failure: ExchangeFailure | undefined): void => {
    if (finished) return;
    finished = true;
    timer?.cancel();
    if (opening) abortOpen?.();
    if (stream !== undefined) {
      options.track?.delete(stream);
      stream.close();
    }
    options.onEnd(failure);
  };
  const exchange: Exchange = {
    get finished() {
      return finished;
    },
    succeed: () => end(undefined),
    fail: (message, cause) => end({ kind: 'caller', message, cause }),
  };
  const failAs = (kind: ExchangeFailureKind, message: string, cause?: unknown): void => end({ kind, message, cause });
  timer = options.clock.setTimer(options.timeoutMs, () => failAs(opening ? 'open' : 'deadline', `no answer within ${options.timeoutMs} ms`));
  // The dial may take the whole deadline (a busy seed answers late rather than not at all).
  abortOpen = options.streams.open(
    options.to,
    options.protocol,
    (error, opened) => {
      opening = false;
      if (finished) {
        opened?.close();
        return;
      }
      if (error !== null || opened === undefined) {
        failAs('open', error?.message ?? 'no stream', error);
        return;
      }
      stream = opened;
      options.track?.add(opened);
      opened.onClose((closeError) => {
        options.track?.delete(opened);
        if (!finished) failAs('closed', closeError?.message ?? 'the peer closed the stream early', closeError);
      });
      opened.onMessage((message) => {
        if (!finished) options.onMessage(message, opened, exchange);
      });
      options.onOpen(opened, exchange);
    },
    { timeoutMs: options.timeoutMs },
  );
  return exchange;
}
