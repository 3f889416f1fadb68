export { NodeFs } from './fs.js';
export { parentDir, writeFileAtomic, type AtomicWriteOptions } from './atomic.js';
export type { StorageFs } from './fs.js';
export { StorageError } from './errors.js';
export { frameRecord, readRecords, MAX_RECORD_BYTES } from './records.js';
