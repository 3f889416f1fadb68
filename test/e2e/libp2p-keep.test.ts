/**
 * A kept connection is asked with its own dial limit, not the node's default one: on a node too
 * busy to finish a handshake within the default, keeps that timed out were replaced at once by
 * new dials to other peers, whose handshakes timed out in turn (a 60-node formation made 2,505
 * dials with 971 failures, 749 of them keeps, and spent 1.7x the CPU). Here the default limit is
 * 1 ms, shorter than any handshake (private network + noise + yamux + stream negotiation): an
 * ordinary stream fails by it, and the keep still succeeds.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import t from 'tap';
import { Libp2pNode, parseClusterKey, generateClusterKey, pskFromClusterKey, TransportErrorCode, type TransportError } from '../../src/net/index.js';

t.test('a keep outlives the default dial limit that fails an ordinary stream', async (t) => {
  const psk = pskFromClusterKey(parseClusterKey(generateClusterKey(), 'test'), 'keep-test');
  const start = async (dialTimeoutMs?: number) =>
    Libp2pNode.start({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], psk, ...(dialTimeoutMs === undefined ? {} : { dialTimeoutMs }) });
  const busy = await start(1);
  const other = await start();
  t.teardown(async () => {
    await busy.stop();
    await other.stop();
  });
  other.handle('/lashup/test/echo/1', (stream) => stream.onMessage(({ data }) => stream.send(data)));
  const opened = await new Promise<TransportError | null>((resolve) => busy.open(other.localAddress, '/lashup/test/echo/1', (error) => resolve(error)));
  t.equal(opened?.code, TransportErrorCode.Timeout, 'an ordinary stream is held to the 1 ms default');
  const kept = await new Promise<string>((resolve) => busy.keep(other.localAddress, false, () => undefined, resolve));
  t.equal(kept, 'kept');
  t.equal(busy.stats.keepsOut, 1);
  t.ok(busy.isConnected(other.localAddress), 'a connection to the kept peer is up (by address)');
  t.ok(other.isConnected(busy.peerId), 'and at the other end (by peer id)');
  t.notOk(busy.isConnected(busy.localAddress), 'no connection to itself');
});
