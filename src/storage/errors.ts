import { LashupError, type ErrorDetails } from '../common/index.js';

/** Reading or writing the data directory failed (details: op, path, errno). */
export class StorageError extends LashupError {
  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super('LASHUP_ERR_STORAGE', message, details, options);
  }
}
