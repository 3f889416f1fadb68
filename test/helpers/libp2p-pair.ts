/**
 * Real libp2p nodes (two, or more) on 127.0.0.1 with one fresh cluster key, stopped at the test's end:
 * the e2e tests of one mechanism of the libp2p layer.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { Libp2pNode, parseClusterKey, generateClusterKey, pskFromClusterKey, type KeepResult, type Libp2pNodeOptions } from '../../src/net/index.js';

interface Teardown {
  teardown(fn: () => Promise<void>): void;
}

export async function libp2pPair(t: Teardown, label: string, options: Partial<Libp2pNodeOptions> = {}): Promise<[Libp2pNode, Libp2pNode]> {
  const [a, b] = (await libp2pNodes(t, label, 2, options)) as [Libp2pNode, Libp2pNode];
  return [a, b];
}

/** `count` nodes with one fresh cluster key, stopped at the test's end. */
export async function libp2pNodes(t: Teardown, label: string, count: number, options: Partial<Libp2pNodeOptions> = {}): Promise<Libp2pNode[]> {
  const psk = pskFromClusterKey(parseClusterKey(generateClusterKey(), 'test'), label);
  const nodes: Libp2pNode[] = [];
  t.teardown(async () => {
    for (const node of nodes) await node.stop();
  });
  for (let i = 0; i < count; i++) nodes.push(await Libp2pNode.start({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], psk, ...options }));
  return nodes;
}

/** `from` asks `to` to keep a connection (which gossipsub then runs over); resolves with the answer. */
export function keepConnection(from: Libp2pNode, to: Libp2pNode): Promise<KeepResult> {
  return new Promise((resolve) => from.keep(to.localAddress, false, () => undefined, resolve));
}
