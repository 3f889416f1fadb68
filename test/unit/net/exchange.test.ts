/**
 * startExchange names why an exchange failed: no stream, no verdict in time, the peer closing
 * first, or the caller's own verdict (anti-entropy counts each apart, so an operator can tell
 * unreachable peers from slow ones).
 */
import t, { type Test } from 'tap';
import { Scheduler } from '../../../src/sim/index.js';
import { startExchange, TransportError, TransportErrorCode, type ExchangeFailure, type OpenCallback, type Stream, type StreamTransport } from '../../../src/net/index.js';

/** A stream that only records and can be closed from the far end. */
function fakeStream(): Stream & { closeFromPeer(): void } {
  let onClose: ((error: TransportError | undefined) => void) | undefined;
  let open = true;
  return {
    protocol: '/test/1',
    localAddress: 'a',
    remoteAddress: 'b',
    get isOpen() {
      return open;
    },
    send: () => open,
    onMessage: () => undefined,
    onClose: (handler) => {
      onClose = handler;
    },
    close: () => {
      open = false;
    },
    closeFromPeer: () => {
      open = false;
      onClose?.(new TransportError(TransportErrorCode.ConnectionReset, 'reset by peer'));
    },
  };
}

/** A transport whose open() is answered by the test. */
function transport(): StreamTransport & { answer?: OpenCallback } {
  const self: StreamTransport & { answer?: OpenCallback } = {
    localAddress: 'a',
    handle: () => undefined,
    unhandle: () => undefined,
    open: (_to, _protocol, callback) => {
      self.answer = callback;
      return () => undefined;
    },
    close: () => undefined,
  };
  return self;
}

function run(
  t: Test,
  drive: (streams: ReturnType<typeof transport>, stream: ReturnType<typeof fakeStream>, scheduler: Scheduler) => void,
  verdict?: (e: { fail(m: string): void }) => void,
): ExchangeFailure | undefined {
  const scheduler = new Scheduler();
  const streams = transport();
  const stream = fakeStream();
  let failure: ExchangeFailure | undefined;
  let ended = 0;
  const exchange = startExchange({
    streams,
    clock: scheduler.clock(),
    to: 'b',
    protocol: '/test/1',
    timeoutMs: 1000,
    onOpen: () => undefined,
    onMessage: () => undefined,
    onEnd: (f) => {
      ended++;
      failure = f;
    },
  });
  drive(streams, stream, scheduler);
  verdict?.(exchange);
  scheduler.runFor(5000);
  t.equal(ended, 1, 'ends exactly once');
  return failure;
}

t.test('each way an exchange fails has its kind', async (t) => {
  const refused = run(t, (s) => s.answer?.(new TransportError(TransportErrorCode.ConnectionRefused, 'connection refused')));
  t.equal(refused?.kind, 'open', 'no stream: open');
  t.match(refused?.message, /refused/);

  const neverOpened = run(t, () => undefined);
  t.equal(neverOpened?.kind, 'open', 'the deadline passed while opening: open');

  const silent = run(t, (s, stream) => s.answer?.(null, stream));
  t.equal(silent?.kind, 'deadline', 'open but no verdict in time: deadline');

  const cut = run(t, (s, stream) => {
    s.answer?.(null, stream);
    stream.closeFromPeer();
  });
  t.equal(cut?.kind, 'closed', 'the peer reset the stream: closed');

  const rejected = run(
    t,
    (s, stream) => s.answer?.(null, stream),
    (e) => e.fail('bad message'),
  );
  t.equal(rejected?.kind, 'caller', "the caller's verdict: caller");
});
