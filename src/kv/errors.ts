import { LashupError, type ErrorDetails } from '../common/index.js';

export const KvErrorCode = {
  /** A key is empty, too long or not a string. */
  InvalidKey: 'LASHUP_ERR_KV_INVALID_KEY',
  /** An update would make a key's value larger than maxValueBytes. */
  ValueTooLarge: 'LASHUP_ERR_KV_VALUE_TOO_LARGE',
  /** An update would create a key beyond maxKeys. */
  TooManyKeys: 'LASHUP_ERR_KV_TOO_MANY_KEYS',
  /** A kv config field is out of range. */
  InvalidConfig: 'LASHUP_ERR_KV_INVALID_CONFIG',
  /** A kv message (delta or anti-entropy) is malformed or exceeds a limit. */
  Decode: 'LASHUP_ERR_KV_DECODE',
  /** A kv message speaks a protocol version this build does not read. */
  UnsupportedVersion: 'LASHUP_ERR_KV_UNSUPPORTED_VERSION',
  /** The store was closed (the node is shutting down). */
  Closed: 'LASHUP_ERR_KV_CLOSED',
  /** A remote write to a guarded key was refused by the admission check (see KvAdmission). */
  WriteRefused: 'LASHUP_ERR_KV_WRITE_REFUSED',
  /** An anti-entropy exchange failed (timeout, reset, bad message). */
  AntiEntropyFailed: 'LASHUP_ERR_KV_ANTI_ENTROPY_FAILED',
} as const;

export type KvErrorCode = (typeof KvErrorCode)[keyof typeof KvErrorCode];

export class KvError extends LashupError {
  declare readonly code: KvErrorCode;

  constructor(code: KvErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
