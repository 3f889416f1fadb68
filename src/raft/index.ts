export { RaftNode, DEFAULT_RAFT_CONFIG } from './node.js';
export type { RaftConfig, RaftNodeOptions, ProposeCallback } from './node.js';
export { RaftError, RaftErrorCode } from './errors.js';
export { encodeRaftMessage, decodeRaftMessage, RAFT_WIRE_VERSION } from './codec.js';
export type { NodeId, LogEntry, RaftStorage, PersistentState, Snapshot, StateMachine, RaftMessage, Role } from './types.js';
export { FileRaftStorage } from './file-storage.js';
export type { LoadReport } from './file-storage.js';
