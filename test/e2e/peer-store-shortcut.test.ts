/**
 * The peer-store shortcut (src/net/peer-store-shortcut.ts) on two real libp2p nodes: libp2p's
 * per-stream protocol merge runs once per peer and protocol, at both ends, and the peer store
 * still lists the protocol.
 */
import t from 'tap';
import { libp2pPair } from '../helpers/libp2p-pair.js';
import type { Libp2pNode } from '../../src/net/index.js';

const ECHO = '/lashup/test/echo/1';

function echoOnce(from: Libp2pNode, to: Libp2pNode): Promise<void> {
  return new Promise((resolve, reject) =>
    from.open(to.localAddress, ECHO, (error, stream) => {
      if (error !== null || stream === undefined) {
        reject(error ?? new Error('no stream'));
        return;
      }
      stream.onMessage(() => {
        stream.close();
        resolve();
      });
      stream.send(Uint8Array.of(1, 2, 3));
    }),
  );
}

t.test("twenty streams: one protocol merge each way, and the protocol stays in the peer's record", async (t) => {
  const [a, b] = await libp2pPair(t, 'peer-store-shortcut-test');
  b.handle(ECHO, (stream) => stream.onMessage(({ data }) => stream.send(data)));
  for (let i = 0; i < 20; i++) await echoOnce(a, b);
  const opened = a.stats.peerStoreShortcut;
  const accepted = b.stats.peerStoreShortcut;
  t.ok(opened.skipped >= 19, `the opening side skipped its merge for the later streams (${JSON.stringify(opened)})`);
  t.ok(accepted.skipped >= 19, `so did the accepting side (${JSON.stringify(accepted)})`);
  t.ok(opened.merged >= 1 && accepted.merged >= 1, 'each side merged the protocol once at least');
  const seenByA = await a.libp2p.peerStore.get(b.libp2p.peerId);
  const seenByB = await b.libp2p.peerStore.get(a.libp2p.peerId);
  t.ok(seenByA.protocols.includes(ECHO), `a's record of b lists the protocol (${seenByA.protocols.join(', ')})`);
  t.ok(seenByB.protocols.includes(ECHO), `b's record of a lists the protocol (${seenByB.protocols.join(', ')})`);
});
