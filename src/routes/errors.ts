import { LashupError, type ErrorDetails } from '../common/index.js';

export const RoutesErrorCode = {
  /** An overlay entry read from the store is malformed (details name the network, VTEP IP and field). */
  InvalidEntry: 'LASHUP_ERR_ROUTES_INVALID_ENTRY',
  /** Two agents publish the same subnet, VTEP MAC or IPv6 VTEP address; the lower VTEP IP keeps it. */
  Conflict: 'LASHUP_ERR_ROUTES_CONFLICT',
  /** The node's own lease or underlay address cannot be turned into local devices. */
  InvalidLocal: 'LASHUP_ERR_ROUTES_INVALID_LOCAL',
} as const;

export type RoutesErrorCode = (typeof RoutesErrorCode)[keyof typeof RoutesErrorCode];

export class RoutesError extends LashupError {
  declare readonly code: RoutesErrorCode;

  constructor(code: RoutesErrorCode, message: string, details: ErrorDetails = {}) {
    super(code, message, details);
  }
}
