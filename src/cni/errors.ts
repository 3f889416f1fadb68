/**
 * CNI error codes (CNI specification 1.0.0, "Error"): a plugin prints
 * `{ cniVersion, code, msg, details }` on stdout and exits non-zero. 1-99 are the
 * specification's; lashup adds none of its own, and puts its stable LASHUP_ERR_ code in `details`.
 */
import { LashupError, type ErrorDetails } from '../common/index.js';

export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  /** CNI 1.1 STATUS: the plugin cannot serve ADDs now. */
  PluginNotAvailable: 50,
} as const;

export type CniCode = (typeof CniCode)[keyof typeof CniCode];

export const CniErrorCode = {
  /** The agent's Mesos half of a network has no free address (details: network, agent, used, total). */
  Exhausted: 'LASHUP_ERR_CNI_EXHAUSTED',
  /** A request names a network this agent has no lease for. */
  UnknownNetwork: 'LASHUP_ERR_CNI_UNKNOWN_NETWORK',
  /** The daemon has no lease yet, or cannot be reached: the runtime should retry. */
  NotReady: 'LASHUP_ERR_CNI_NOT_READY',
  /** CHECK of an attachment the daemon does not know. */
  UnknownContainer: 'LASHUP_ERR_CNI_UNKNOWN_CONTAINER',
  /** A request is malformed (details name the field). */
  BadRequest: 'LASHUP_ERR_CNI_BAD_REQUEST',
  /**
   * The lease file could not be written (details: path, errno). Nothing changed: the request
   * was rolled back in memory, so a retry writes again instead of answering from memory.
   */
  PersistFailed: 'LASHUP_ERR_CNI_PERSIST_FAILED',
} as const;

export class CniError extends LashupError {
  constructor(
    code: (typeof CniErrorCode)[keyof typeof CniErrorCode],
    readonly cniCode: CniCode,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(code, message, details);
  }
}
