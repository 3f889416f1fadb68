/**
 * Gossipsub's outbound streams (src/net/gossipsub-streams.ts), on real libp2p nodes (two, then three).
 *
 * Past bug: gossipsub sends to a peer only on the stream it opened on one connection. When that
 * connection closed while a second connection to the peer stayed open (the idle check closes a
 * join's short-lived connection; the peer may be kept on another), gossipsub opened no new
 * stream: the peer stayed a subscriber and mesh member, and every send to it was dropped.
 */
import type { Multiaddr } from '@multiformats/multiaddr';
import t from 'tap';
import { keepConnection, libp2pNodes, libp2pPair } from '../helpers/libp2p-pair.js';
import { until } from '../helpers/until.js';
import { outboundStreamsOf, type Libp2pNode } from '../../src/net/index.js';

const TOPIC = 'lashup/test/streams/1';

function addressOf(node: Libp2pNode): Multiaddr {
  const address = node.libp2p.getMultiaddrs()[0];
  if (address === undefined) throw new Error('the node listens nowhere');
  return address;
}

t.test("a gossipsub stream whose connection closed is reopened on the peer's other connection", async (t) => {
  const [a, b] = await libp2pPair(t, 'streams-test');
  const streams = outboundStreamsOf(a.libp2p.services.pubsub);
  const received: string[] = [];
  b.subscribe(TOPIC, (data) => received.push(new TextDecoder().decode(data)));
  a.subscribe(TOPIC, () => undefined);
  const bId = b.libp2p.peerId;
  t.equal(await keepConnection(a, b), 'kept');
  await until(() => streams?.has(bId.toString()) === true, 10_000, "a's gossipsub stream to b");

  // A second connection between the same two nodes, then the first one closes.
  await a.libp2p.dial(addressOf(b), { force: true });
  t.equal(a.libp2p.getConnections(bId).length, 2, 'two connections from a to b');
  const carrying = a.libp2p.getConnections(bId).find((c) => c.streams.some((s) => s.direction === 'outbound' && (s.protocol ?? '').startsWith('/meshsub/')));
  if (carrying === undefined) throw new Error("no connection carries a's gossipsub stream");
  await carrying.close();

  await until(() => streams?.has(bId.toString()) === true && a.stats.gossipStreamsReopened >= 1, 10_000, "a's stream to b reopened on the remaining connection");
  t.equal(a.libp2p.getConnections(bId).length, 1, 'one connection left');
  t.equal(a.stats.gossipStreamsReopened, 1, 'counted once');

  a.publish(TOPIC, new TextEncoder().encode('after the close'));
  await until(() => received.length > 0, 10_000, 'the message at b');
  t.same(received, ['after the close'], 'b received what a published after the close');
});

t.test('streams to several peers open without waiting for one another', async (t) => {
  const [a, b, c] = (await libp2pNodes(t, 'streams-parallel', 3)) as [Libp2pNode, Libp2pNode, Libp2pNode];
  const streams = outboundStreamsOf(a.libp2p.services.pubsub);
  const bId = b.libp2p.peerId.toString();
  const cId = c.libp2p.peerId.toString();
  // a's gossipsub stream to b waits (its negotiation held back) until released.
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let held = 0;
  a.libp2p.addEventListener('connection:open', (event) => {
    const connection = event.detail;
    if (connection.remotePeer.toString() !== bId) return;
    const newStream = connection.newStream.bind(connection);
    connection.newStream = (async (protocols: string | string[], options?: object) => {
      if ([protocols].flat().some((p) => p.startsWith('/meshsub/'))) {
        held++;
        await released;
      }
      return newStream(protocols, options);
    }) as typeof connection.newStream;
  });
  for (const node of [a, b, c]) node.subscribe(TOPIC, () => undefined);
  void keepConnection(a, b);
  await until(() => held === 1, 10_000, "a's stream to b held back");
  t.equal(await keepConnection(a, c), 'kept');
  // One at a time (gossipsub's own queue), the stream to c would wait for b's.
  await until(() => streams?.has(cId) === true, 10_000, "a's stream to c while the one to b is held");
  t.notOk(streams?.has(bId), 'the stream to b is still held back');
  release();
  await until(() => streams?.has(bId) === true, 10_000, "a's stream to b once released");
  t.equal(streams?.size, 2, 'one stream to each peer, no duplicate');
});

t.test('gossipsub runs over kept connections only, set up at both ends without identify', async (t) => {
  const [a, b] = await libp2pPair(t, 'streams-kept');
  let identified = 0;
  for (const node of [a, b]) node.libp2p.addEventListener('peer:identify', () => identified++);
  const atA: string[] = [];
  const atB: string[] = [];
  a.subscribe(TOPIC, (data) => atA.push(new TextDecoder().decode(data)));
  b.subscribe(TOPIC, (data) => atB.push(new TextDecoder().decode(data)));
  b.handle('/lashup/test/echo/1', (stream) => stream.onMessage(({ data }) => stream.send(data)));

  // A short-lived connection: one stream round trip, and gossipsub is not told of it.
  await new Promise<void>((resolve, reject) =>
    a.open(b.localAddress, '/lashup/test/echo/1', (error, stream) => {
      if (error !== null || stream === undefined) return reject(error ?? new Error('no stream'));
      stream.onMessage(() => {
        stream.close();
        resolve();
      });
      stream.send(Uint8Array.of(7));
    }),
  );
  t.same(a.libp2p.services.pubsub.getPeers(), [], 'a short-lived connection gives gossipsub no peer');

  t.equal(await keepConnection(a, b), 'kept');
  const streamsA = outboundStreamsOf(a.libp2p.services.pubsub);
  const streamsB = outboundStreamsOf(b.libp2p.services.pubsub);
  await until(() => streamsA?.has(b.peerId) === true && streamsB?.has(a.peerId) === true, 10_000, 'gossipsub streams both ways');
  await until(() => a.libp2p.services.pubsub.getSubscribers(TOPIC).length === 1 && b.libp2p.services.pubsub.getSubscribers(TOPIC).length === 1, 10_000, 'subscriptions both ways');
  a.publish(TOPIC, new TextEncoder().encode('from a'));
  b.publish(TOPIC, new TextEncoder().encode('from b'));
  await until(() => atA.length > 0 && atB.length > 0, 10_000, 'a message each way');
  t.same([atA, atB], [['from b'], ['from a']], 'each received the other one');
  t.equal(identified, 0, 'no identify exchange ran');

  // The registrar, with no protocols of b in the peer store, would leave b in a's gossipsub.
  await b.stop();
  await until(() => a.libp2p.services.pubsub.getPeers().length === 0, 10_000, "b gone from a's gossipsub");
  t.same(a.libp2p.services.pubsub.getPeers(), [], "a's gossipsub holds no stale peer");
});
