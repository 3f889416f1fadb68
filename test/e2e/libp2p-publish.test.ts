/**
 * A message published while no subscriber can be sent to waits in the outbox until one can.
 * Past bug: the outbox let go of a message as soon as a peer's subscription arrived, but the
 * subscription comes over the peer's gossipsub stream to this node, and this node's own stream
 * to the peer opens separately (later, on a busy node: gossipsub opens them one at a time).
 * Gossipsub drops a send to a peer without that stream silently and remembers the message as
 * seen, so the message was lost to gossip; in a 60-node formation most nodes' first writes were.
 * Here this node's stream to the peer is held back on purpose until after the subscription came.
 *
 * And the message goes the moment the stream opens, not at the next gossipsub heartbeat (up to
 * a second later): past bug, a new agent's overlay entry, published when its lease came, waited
 * for the heartbeat in half the joins traced in the e2e bench. The heartbeat is set far out here,
 * so only the stream's opening can let the message go.
 */
import t from 'tap';
import { keepConnection, libp2pPair } from '../helpers/libp2p-pair.js';
import { until } from '../helpers/until.js';
import { outboundStreamsOf } from '../../src/net/index.js';

const TOPIC = 'lashup/test/publish/1';

t.test('a message waits for a subscriber this node can send to, then reaches it once', async (t) => {
  const [a, b] = await libp2pPair(t, 'publish-test', { heartbeatIntervalMs: 600_000 });
  const pubsub = a.libp2p.services.pubsub;
  // Gossipsub's own count of the heartbeats it ran (a listener added now could miss the first,
  // which runs 100 ms after start; then one per interval).
  const heartbeats = (): number => (pubsub as unknown as { heartbeatTicks: number }).heartbeatTicks;
  t.equal(typeof heartbeats(), 'number', 'gossipsub still counts its heartbeats (this test reads the count)');
  await until(() => heartbeats() === 1, 10_000, "a's first heartbeat");
  const streams = outboundStreamsOf(pubsub);
  t.ok(streams !== undefined, 'gossipsub still keeps its outbound streams in a map (the outbox relies on it)');

  // Hold back a's outbound gossipsub stream until released.
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const patched = pubsub as unknown as { createOutboundStream: (...args: unknown[]) => Promise<void> };
  const original = patched.createOutboundStream.bind(pubsub);
  patched.createOutboundStream = async (...args: unknown[]) => {
    await released;
    return original(...args);
  };

  const received: string[] = [];
  b.subscribe(TOPIC, (data) => received.push(new TextDecoder().decode(data)));
  a.subscribe(TOPIC, () => undefined);

  t.equal(await keepConnection(a, b), 'kept');
  await until(() => pubsub.getSubscribers(TOPIC).length > 0, 10_000, "b's subscription at a");
  t.equal(streams?.size, 0, "b's subscription arrived before a's own stream to b opened");

  a.publish(TOPIC, new TextEncoder().encode('first write'));
  t.equal(a.stats.outbox, 1, 'held: b subscribes, but gossipsub cannot send to it yet');
  t.equal(a.stats.published, 0, 'not handed to gossipsub (it would drop the send and call the message seen)');

  release();
  // Bounded: a lost message never arrives.
  await until(() => received.length > 0, 10_000, 'the held message at b');
  t.equal(heartbeats(), 1, 'sent when the stream opened: no heartbeat came in between');
  t.same(received, ['first write'], 'b received the message once the stream opened');
  t.equal(a.stats.outbox, 0, 'the outbox is empty');
  t.equal(a.stats.published, 1);
  t.equal(a.stats.publishedToNobody, 0, 'the publish reached a peer');
});
