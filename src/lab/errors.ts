import { LashupError, type ErrorDetails } from '../common/index.js';

export const LabErrorCode = {
  /** A scenario file that is not JSON or breaks its schema (details: path, value, expected). */
  Scenario: 'LASHUP_ERR_LAB_SCENARIO',
  /** The lab needs what this machine lacks: root, nftables, the reference CNI plugins. */
  Unsupported: 'LASHUP_ERR_LAB_UNSUPPORTED',
  /** A step could not be carried out (a node did not start, a release was refused, ...). */
  Step: 'LASHUP_ERR_LAB_STEP',
} as const;

export type LabErrorCode = (typeof LabErrorCode)[keyof typeof LabErrorCode];

export class LabError extends LashupError {
  declare readonly code: LabErrorCode;

  constructor(code: LabErrorCode, message: string, details: ErrorDetails = {}) {
    super(code, message, details);
  }
}
