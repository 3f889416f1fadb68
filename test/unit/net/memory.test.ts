import t from 'tap';
import { Simulation } from '../../../src/sim/index.js';
import { createSimTransports, TransportError, TransportErrorCode, DEFAULT_MAX_PACKET_BYTES, type ReceivedPacket, type Stream } from '../../../src/net/index.js';

function pair(seed = 1) {
  const sim = new Simulation({ seed, network: { defaultLink: { latency: { kind: 'constant', ms: 3 } } } });
  const a = createSimTransports(sim.network.addHost('a'));
  const b = createSimTransports(sim.network.addHost('b'));
  return { sim, a, b };
}

t.test('packets carry the sender and the receive time, and are copied on send', async (t) => {
  const { sim, a, b } = pair();
  const got: ReceivedPacket[] = [];
  b.packets.onPacket((p) => got.push(p));
  const buffer = Uint8Array.of(1, 2, 3);
  sim.runFor(10);
  a.packets.send('b', buffer);
  buffer[0] = 99; // the caller reuses its buffer at once
  sim.runFor(10);
  t.equal(got.length, 1);
  t.equal(got[0]?.from, 'a');
  t.equal(got[0]?.receivedAtMs, 13);
  t.same([...(got[0]?.data ?? [])], [1, 2, 3], 'the packet kept what was sent');
  t.equal(a.packets.localAddress, 'a');
  t.equal(a.packets.maxPacketBytes, DEFAULT_MAX_PACKET_BYTES);
});

t.test('oversized packets and sends on a closed transport are typed errors', async (t) => {
  const { a } = pair();
  t.throws(() => a.packets.send('b', new Uint8Array(DEFAULT_MAX_PACKET_BYTES + 1)), {
    code: TransportErrorCode.PacketTooLarge,
  });
  a.packets.close();
  const err = t.throws(() => a.packets.send('b', new Uint8Array(1)));
  t.ok(err instanceof TransportError);
  t.equal((err as TransportError).code, TransportErrorCode.Closed);
});

t.test('a cleared packet handler stops delivery', async (t) => {
  const { sim, a, b } = pair();
  let n = 0;
  b.packets.onPacket(() => n++);
  b.packets.onPacket(undefined);
  a.packets.send('b', new Uint8Array(1));
  sim.runFor(10);
  t.equal(n, 0);
});

t.test('streams: request/response with receive times, clean close', async (t) => {
  const { sim, a, b } = pair();
  b.streams.handle('echo', (stream) => {
    t.equal(stream.protocol, 'echo');
    t.equal(stream.remoteAddress, 'a');
    t.equal(stream.localAddress, 'b');
    stream.onMessage((m) => stream.send(m.data));
  });
  let client: Stream | undefined;
  a.streams.open('b', 'echo', (err, stream) => {
    t.equal(err, null);
    client = stream;
  });
  sim.runFor(10);
  t.ok(client?.isOpen);
  const replies: number[] = [];
  client?.onMessage((m) => replies.push(m.receivedAtMs));
  let closeError: TransportError | undefined | null = null;
  client?.onClose((e) => (closeError = e));
  const payload = Uint8Array.of(7);
  client?.send(payload);
  payload[0] = 0;
  sim.runFor(10);
  t.same(replies, [sim.nowMs() - 4], 'one reply, six ms after the send (3 ms each way)');
  client?.close();
  t.equal(client?.isOpen, false);
  t.equal(closeError, undefined, 'a local close reports no error');
  t.equal(a.streams.localAddress, 'a');
});

t.test('open failures map to typed errors', async (t) => {
  const { sim, a, b } = pair();
  const errors: (TransportError | null)[] = [];
  a.streams.open('b', 'nobody', (err) => errors.push(err));
  a.streams.open('ghost', 'x', (err) => errors.push(err));
  sim.runFor(100);
  t.same(
    errors.map((e) => e?.code),
    [TransportErrorCode.UnknownAddress, TransportErrorCode.ConnectionRefused],
    'an unknown address fails at once, a refusal after one round trip',
  );
  b.streams.handle('slow', () => undefined);
  sim.network.partition([['a'], ['b']]);
  const timedOut: (string | undefined)[] = [];
  a.streams.open('b', 'slow', (err) => timedOut.push(err?.code));
  a.streams.open('b', 'slow', (err) => timedOut.push(`short:${err?.code}`), { timeoutMs: 50 });
  sim.runFor(5000);
  t.same(timedOut, [`short:${TransportErrorCode.Timeout}`, TransportErrorCode.Timeout]);
});

t.test('a timeout abandons a connect that would have succeeded later; abort silences it', async (t) => {
  const { sim, a, b } = pair();
  let accepted = 0;
  b.streams.handle('p', () => accepted++);
  const results: string[] = [];
  a.streams.open('b', 'p', (err, stream) => results.push(err?.code ?? `ok:${stream?.isOpen}`), { timeoutMs: 1 });
  const abort = a.streams.open('b', 'p', () => results.push('aborted one called back'), { timeoutMs: 1000 });
  abort();
  sim.runFor(100);
  t.same(results, [TransportErrorCode.Timeout]);
  t.equal(sim.network.host('a').openStreamCount, 0, 'no stream is left open on the client');
  b.streams.unhandle('p');
  b.streams.close();
  a.streams.open('b', 'p', (err) => results.push(err?.code ?? 'ok'));
  sim.runFor(100);
  t.equal(results.at(-1), TransportErrorCode.ConnectionRefused);
  t.ok(accepted <= 1);
});

t.test('a peer crash surfaces as a connection reset error', async (t) => {
  const { sim, a, b } = pair();
  b.streams.handle('p', () => undefined);
  let closeCode: string | undefined;
  a.streams.open('b', 'p', (_err, stream) => stream?.onClose((e) => (closeCode = e?.code)));
  sim.runFor(10);
  sim.network.crash('b');
  sim.runFor(10);
  t.equal(closeCode, TransportErrorCode.ConnectionReset);
});
