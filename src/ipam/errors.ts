import { LashupError, type ErrorDetails } from '../common/index.js';

export const IpamErrorCode = {
  /** The overlay configuration is invalid (details.path names the field). */
  InvalidConfig: 'LASHUP_ERR_IPAM_INVALID_CONFIG',
  /** No free block or address is left (details: network, used, total). */
  Exhausted: 'LASHUP_ERR_SUBNET_EXHAUSTED',
  /** No overlay configuration is committed yet. */
  NotConfigured: 'LASHUP_ERR_IPAM_NOT_CONFIGURED',
  /** An ipam command or result is malformed. */
  Decode: 'LASHUP_ERR_IPAM_DECODE',
  /** No master answered a lease request in time (the agent keeps retrying). */
  NoLeader: 'LASHUP_ERR_IPAM_NO_LEADER',
  /**
   * An agent name asked for its lease from another identity (peer id) than the one the masters
   * pinned for it (details: agent, pinned, presented).
   */
  IdentityMismatch: 'LASHUP_ERR_IPAM_IDENTITY_MISMATCH',
  /** The stored lease is unreadable or belongs to another configuration. */
  LeaseInvalid: 'LASHUP_ERR_IPAM_LEASE_INVALID',
  /** A forwarded allocation (op 7) came from an identity that is not the master it names (details: forwarder). */
  ForwardRefused: 'LASHUP_ERR_IPAM_FORWARD_REFUSED',
  /**
   * A master asked for allocations (the list, or one agent's) has not caught up with the
   * allocator's log since it started or since the last election (details: leader, when it knows
   * one): its answer could lack allocations. The agent keeps what it knows and asks again.
   */
  NotCaughtUp: 'LASHUP_ERR_IPAM_NOT_CAUGHT_UP',
} as const;

export type IpamErrorCode = (typeof IpamErrorCode)[keyof typeof IpamErrorCode];

export class IpamError extends LashupError {
  declare readonly code: IpamErrorCode;

  constructor(code: IpamErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
