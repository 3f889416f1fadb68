import t from 'tap';
import { Simulation } from '../../../src/sim/index.js';
import {
  createSimTransports,
  RpcClient,
  RpcServer,
  StreamPacketTransport,
  keyringFrom,
  parseClusterKey,
  generateClusterKey,
  parseHostPort,
  formatHostPort,
  pskFromClusterKey,
  deriveKey,
  TransportErrorCode,
  type TransportError,
} from '../../../src/net/index.js';

function world(seed = 1) {
  const sim = new Simulation({ seed, network: { defaultLink: { latency: { kind: 'constant', ms: 1 } } } });
  const transports = new Map<string, ReturnType<typeof createSimTransports>>();
  for (const name of ['a', 'b']) sim.network.addHost(name, (host) => void transports.set(name, createSimTransports(host)));
  type T = ReturnType<typeof createSimTransports>;
  return { sim, a: transports.get('a') as T, b: transports.get('b') as T, transports };
}

t.test('rpc: many requests on one reused stream; errors, timeouts and aborts each settle once', async (t) => {
  const { sim, a, b } = world();
  let served = 0;
  new RpcServer(b.streams, '/test/rpc/1', (request, _from, respond, fail) => {
    served++;
    if (request[0] === 0) fail('no zeros please');
    else if (request[0] === 1)
      return; // never answers
    else respond(Uint8Array.of(request[0] as number, 42));
  });
  const client = new RpcClient(a.streams, sim.scheduler.clock(), '/test/rpc/1', 500);
  const results: string[] = [];
  for (const n of [5, 6, 7]) client.request('b', Uint8Array.of(n), (err, r) => results.push(err === null ? `ok:${r?.[0]}` : `err:${err.code}`));
  client.request('b', Uint8Array.of(0), (err) => results.push(`fail:${String(err?.message)}`));
  client.request('b', Uint8Array.of(1), (err) => results.push(`timeout:${err?.code}`));
  const controller = new AbortController();
  client.request('b', Uint8Array.of(9), (err) => results.push(`abort:${err?.code}`), { signal: controller.signal });
  controller.abort();
  const cancel = client.request('b', Uint8Array.of(10), () => results.push('cancelled request called back'));
  cancel();
  sim.runFor(1000);
  t.same(results.slice(0, 4).sort(), ['abort:LASHUP_ERR_NET_CLOSED', 'ok:5', 'ok:6', 'ok:7'].sort());
  t.match(results.find((r) => r.startsWith('fail:')) ?? '', /no zeros please/);
  t.ok(results.includes(`timeout:${TransportErrorCode.Timeout}`));
  t.notOk(results.includes('cancelled request called back'));
  t.equal(a.streams === undefined, false);
  t.equal(sim.network.host('a').counters.streamsOpened, 1, 'one stream for all requests');
  t.ok(served >= 6);
  const p = client.call('b', Uint8Array.of(3));
  sim.runFor(100);
  t.same(await p, Uint8Array.of(3, 42));
});

t.test('rpc: a dead server fails requests in flight; the next request opens a new stream', async (t) => {
  const { sim, a, b } = world(2);
  new RpcServer(b.streams, '/test/rpc/1', (request, _from, respond) => respond(request));
  const client = new RpcClient(a.streams, sim.scheduler.clock(), '/test/rpc/1', 5000);
  let first: TransportError | null | undefined;
  client.request('b', Uint8Array.of(1), (err) => (first = err));
  sim.runFor(10);
  t.equal(first, null);
  sim.network.crash('b');
  let second: TransportError | null | undefined;
  client.request('b', Uint8Array.of(2), (err) => (second = err));
  sim.runFor(3000);
  t.ok(second !== null && second !== undefined, `failed: ${second?.code}`);
  let third: TransportError | null | undefined;
  client.request('nobody', Uint8Array.of(3), (err) => (third = err));
  sim.runFor(100);
  t.equal(third?.code, TransportErrorCode.UnknownAddress);
  client.close();
});

t.test('packets over streams: delivered with the sender as from; queued while opening; bounded', async (t) => {
  const { sim, a, b } = world(3);
  const pa = new StreamPacketTransport(a.streams);
  const pb = new StreamPacketTransport(b.streams);
  const got: string[] = [];
  pb.onPacket((p) => got.push(`${p.from}:${p.data[0]}`));
  for (let i = 0; i < 70; i++) pa.send('b', Uint8Array.of(i));
  sim.runFor(10);
  t.equal(got.length, 64, 'the queue holds 64 packets while the stream opens');
  t.equal(pa.stats.packetsDropped, 6);
  pa.send('b', Uint8Array.of(200));
  sim.runFor(10);
  t.equal(got[got.length - 1], 'a:200', 'later packets use the open stream');
  t.throws(() => pa.send('b', new Uint8Array(2000)), { code: TransportErrorCode.PacketTooLarge });
  pa.send('nobody', Uint8Array.of(1));
  sim.runFor(10);
  t.equal(pa.stats.openFailures, 1);
  t.equal(pa.localAddress, 'a');
  pa.close();
  pb.close();
  t.throws(() => pa.send('b', Uint8Array.of(1)), { code: TransportErrorCode.Closed });
});

t.test('keys and addresses: validation with clear errors', async (t) => {
  const key = generateClusterKey();
  t.equal(parseClusterKey(key).length, 32);
  t.throws(() => parseClusterKey('short'), { code: TransportErrorCode.InvalidKey, message: /44 characters/ });
  t.throws(() => parseClusterKey(5), { code: TransportErrorCode.InvalidKey });
  t.throws(() => keyringFrom([]), { code: TransportErrorCode.InvalidKey, message: /empty/ });
  const other = generateClusterKey();
  const ring = keyringFrom([key, other]);
  t.same(ring.accepted.length, 1);
  t.not(Buffer.from(deriveKey(ring.primary, 'a')).toString('hex'), Buffer.from(deriveKey(ring.primary, 'b')).toString('hex'), 'purposes differ');
  t.match(new TextDecoder().decode(pskFromClusterKey(ring.primary, 'x')), /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/);
  t.same(parseHostPort('127.0.0.1:7946'), { host: '127.0.0.1', port: 7946 });
  t.same(parseHostPort('[::1]:7946'), { host: '::1', port: 7946 });
  t.equal(formatHostPort('::1', 5), '[::1]:5');
  for (const bad of ['localhost:1', '1.2.3.4', '1.2.3.4:0', '1.2.3.4:70000', ':5']) t.throws(() => parseHostPort(bad), { code: TransportErrorCode.InvalidAddress }, bad);
});
