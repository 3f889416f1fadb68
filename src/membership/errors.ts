import { LashupError, type ErrorDetails } from '../common/index.js';

export const MembershipErrorCode = {
  /** A membership config field is out of range or of the wrong type. */
  InvalidConfig: 'LASHUP_ERR_MEMBERSHIP_INVALID_CONFIG',
  /** Member metadata is malformed or larger than the 512 bytes a member may carry. */
  InvalidMeta: 'LASHUP_ERR_MEMBERSHIP_INVALID_META',
  /** A SWIM packet or sync message is not valid msgpack, has the wrong structure or exceeds a limit. */
  Decode: 'LASHUP_ERR_MEMBERSHIP_DECODE',
  /** A packet or sync message speaks a protocol version this build does not read. */
  UnsupportedVersion: 'LASHUP_ERR_MEMBERSHIP_UNSUPPORTED_VERSION',
  /** A call made in a lifecycle state that does not allow it (join after stop, say). */
  InvalidState: 'LASHUP_ERR_MEMBERSHIP_INVALID_STATE',
  /** No seed answered a join attempt (the node keeps retrying with backoff). */
  JoinFailed: 'LASHUP_ERR_MEMBERSHIP_JOIN_FAILED',
  /** A state sync with a peer failed (timeout, reset, bad message). */
  SyncFailed: 'LASHUP_ERR_MEMBERSHIP_SYNC_FAILED',
} as const;

export type MembershipErrorCode = (typeof MembershipErrorCode)[keyof typeof MembershipErrorCode];

export class MembershipError extends LashupError {
  declare readonly code: MembershipErrorCode;

  constructor(code: MembershipErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
