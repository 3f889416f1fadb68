import { LashupError, type ErrorDetails } from '../common/index.js';

export const VxlanErrorCode = {
  /** A VTEP, bridge or network name, MAC, address or device attribute is malformed (details.path names it). */
  InvalidSpec: 'LASHUP_ERR_VXLAN_INVALID_SPEC',
} as const;

export type VxlanErrorCode = (typeof VxlanErrorCode)[keyof typeof VxlanErrorCode];

export class VxlanError extends LashupError {
  declare readonly code: VxlanErrorCode;

  constructor(code: VxlanErrorCode, message: string, details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

export function invalidSpec(path: string, value: unknown, expected: string): never {
  throw new VxlanError(VxlanErrorCode.InvalidSpec, `${path} = ${JSON.stringify(value)} is not valid; expected ${expected}`, { path, value });
}
