import { LashupError, type ErrorDetails } from '../common/index.js';

export const FirewallErrorCode = {
  /** `nft` refused a script or a listing (details.stderr has its words), or could not run. */
  Apply: 'LASHUP_ERR_FIREWALL_APPLY',
} as const;

export type FirewallErrorCode = (typeof FirewallErrorCode)[keyof typeof FirewallErrorCode];

export class FirewallError extends LashupError {
  declare readonly code: FirewallErrorCode;

  constructor(code: FirewallErrorCode, message: string, details: ErrorDetails = {}) {
    super(code, message, details);
  }
}
