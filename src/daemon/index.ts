export { LashupNode, loadOrCreatePeerKey, seedMultiaddr, KV_TOPIC } from './node.js';
export type { NodeOptions } from './node.js';
