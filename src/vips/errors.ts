import { LashupError, type ErrorDetails } from '../common/index.js';

export const VipErrorCode = {
  /** A VIP declaration that does not parse or is out of range (details: value, field). */
  Invalid: 'LASHUP_ERR_VIP_INVALID',
  /** An address VIP inside an overlay subnet: it would shadow a container's address. */
  InOverlay: 'LASHUP_ERR_VIP_IN_OVERLAY',
  /** An address VIP inside the named VIPs' range: the allocator may give that address to a name. */
  InVipRange: 'LASHUP_ERR_VIP_IN_VIP_RANGE',
  /** The named VIPs' range has no free address left (the allocator's answer; details: vips). */
  Exhausted: 'LASHUP_ERR_VIP_EXHAUSTED',
} as const;

export type VipErrorCode = (typeof VipErrorCode)[keyof typeof VipErrorCode];

export class VipError extends LashupError {
  declare readonly code: VipErrorCode;

  constructor(code: VipErrorCode, message: string, details: ErrorDetails = {}) {
    super(code, message, details);
  }
}
