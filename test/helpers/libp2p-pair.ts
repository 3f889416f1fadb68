/**
 * Two real libp2p nodes on 127.0.0.1 with one fresh cluster key, stopped at the test's end:
 * the e2e tests of one mechanism of the libp2p layer.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { Libp2pNode, parseClusterKey, generateClusterKey, pskFromClusterKey, type Libp2pNodeOptions } from '../../src/net/index.js';

interface Teardown {
  teardown(fn: () => Promise<void>): void;
}

export async function libp2pPair(t: Teardown, label: string, options: Partial<Libp2pNodeOptions> = {}): Promise<[Libp2pNode, Libp2pNode]> {
  const psk = pskFromClusterKey(parseClusterKey(generateClusterKey(), 'test'), label);
  const start = async () => Libp2pNode.start({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], psk, ...options });
  const a = await start();
  const b = await start();
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  return [a, b];
}
