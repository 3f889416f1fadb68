import { LashupError, type ErrorDetails } from '../common/index.js';

export const CrdtErrorCode = {
  /** Two LWW writes carry the same marker but different values (a broken marker source, or two nodes sharing one identity). */
  LwwConflict: 'LASHUP_ERR_CRDT_LWW_CONFLICT',
  /** A value given to a register or set is not plain data (or exceeds what plain data allows). */
  InvalidValue: 'LASHUP_ERR_CRDT_INVALID_VALUE',
  /** An actor, counter, marker or key is malformed. */
  InvalidArgument: 'LASHUP_ERR_CRDT_INVALID_ARGUMENT',
  /** Two states of different CRDT kinds were joined. */
  KindMismatch: 'LASHUP_ERR_CRDT_KIND_MISMATCH',
  /** Encoded bytes are malformed: not msgpack, wrong structure, inconsistent dots. */
  Decode: 'LASHUP_ERR_CRDT_DECODE',
  /** Encoded bytes exceed a decode limit (bytes, entries, depth). */
  DecodeLimit: 'LASHUP_ERR_CRDT_DECODE_LIMIT',
  /** Encoded bytes use a format version this build does not read. */
  UnsupportedVersion: 'LASHUP_ERR_CRDT_UNSUPPORTED_VERSION',
} as const;

export type CrdtErrorCode = (typeof CrdtErrorCode)[keyof typeof CrdtErrorCode];

export class CrdtError extends LashupError {
  declare readonly code: CrdtErrorCode;

  constructor(code: CrdtErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
