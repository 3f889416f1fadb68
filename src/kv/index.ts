export { KvStore, treePosition } from './store.js';
export type { KvStoreOptions, KvValue, KvChange, KvSelector, KvStats, Journal, JournalRecordKind, UpdateResult, KvAdmission, FieldChange } from './store.js';
export { AntiEntropy } from './anti-entropy.js';
export type { AntiEntropyOptions, AntiEntropyStats, RoundReport } from './anti-entropy.js';
export { kvConfig, DEFAULT_KV_CONFIG } from './config.js';
export type { KvConfig } from './config.js';
export { KvError, KvErrorCode } from './errors.js';
export {
  encodeDelta,
  decodeDelta,
  encodeAe,
  encodeAeChunks,
  decodeAe,
  KvMessageType,
  ANTI_ENTROPY_PROTOCOL,
  AE_BUCKETS,
  MAX_KEY_LENGTH,
  KV_PROTOCOL_VERSION,
} from './codec.js';
export type { AeMessage } from './codec.js';
export { KvPersistence, DEFAULT_FSYNC_POLICY } from './persistence.js';
export type { FsyncPolicy, PersistenceOptions, RecoveryReport, PersistenceStats } from './persistence.js';
export { NodeFs } from '../storage/index.js';
export type { StorageFs } from '../storage/index.js';
