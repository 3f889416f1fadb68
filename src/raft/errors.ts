import { LashupError, type ErrorDetails } from '../common/index.js';

export const RaftErrorCode = {
  /** This member is not the leader; details.leader names the one it knows, if any. */
  NotLeader: 'LASHUP_ERR_RAFT_NOT_LEADER',
  /** Leadership was lost before the proposal committed (it may still commit: retry idempotently). */
  LeadershipLost: 'LASHUP_ERR_RAFT_LEADERSHIP_LOST',
  /** The member was stopped. */
  Stopped: 'LASHUP_ERR_RAFT_STOPPED',
  /** Voters, timeouts or ids are inconsistent. */
  InvalidConfig: 'LASHUP_ERR_RAFT_INVALID_CONFIG',
  /** Persisted raft state could not be read or written. */
  Storage: 'LASHUP_ERR_RAFT_STORAGE',
  /** A raft message is malformed. */
  Decode: 'LASHUP_ERR_RAFT_DECODE',
  /** An internal invariant failed (a bug: please report). */
  Internal: 'LASHUP_ERR_RAFT_INTERNAL',
} as const;

export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

export class RaftError extends LashupError {
  declare readonly code: RaftErrorCode;

  constructor(code: RaftErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
