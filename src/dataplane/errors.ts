import { LashupError, type ErrorDetails } from '../common/index.js';

export const DataplaneErrorCode = {
  /** The kernel refused an operation; `errno` names why (EEXIST, ENOENT, ENETUNREACH, ...). */
  KernelRejected: 'LASHUP_ERR_KERNEL_REJECTED',
  /** The kernel could not be reached: socket closed, a request timed out, a helper died. */
  KernelUnavailable: 'LASHUP_ERR_KERNEL_UNAVAILABLE',
  /** A desired state handed to the reconciler is malformed (details.path names the field). */
  InvalidDesired: 'LASHUP_ERR_DATAPLANE_INVALID_STATE',
} as const;

export type DataplaneErrorCode = (typeof DataplaneErrorCode)[keyof typeof DataplaneErrorCode];

export class DataplaneError extends LashupError {
  declare readonly code: DataplaneErrorCode;

  constructor(code: DataplaneErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

/** A kernel refusal, with the errno name the kernel gave. */
export class KernelError extends DataplaneError {
  constructor(
    /** Errno name, such as `EEXIST`. */
    readonly errno: string,
    /** What was attempted, such as `route.replace 9.0.1.0/24`. */
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(DataplaneErrorCode.KernelRejected, `kernel refused ${operation}: ${errno}`, { errno, operation }, options);
  }
}

/**
 * The errno name in a `netlink` package error (`Error('Request rejected: EEXIST')`), or
 * undefined when the message carries none.
 */
export function errnoFromMessage(message: string): string | undefined {
  const match = /\b(E[A-Z0-9]{2,15})\b/.exec(message);
  return match === null ? undefined : match[1];
}
