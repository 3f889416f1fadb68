export { LashupNode, loadOrCreatePeerKey, seedMultiaddr, KV_TOPIC, OVERLAY_CONFIG_KEY } from './node.js';
export { FileLeaseStore } from './lease-store.js';
export type { NodeOptions } from './node.js';
export { parseConfig, parseConfigText, configDefaults, configReference, ConfigError, ConfigErrorCode, CONFIG_SCHEMA } from './config.js';
export type { DaemonConfig, ConfigProblem } from './config.js';
