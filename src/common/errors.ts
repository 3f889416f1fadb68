/**
 * Error conventions shared by every lashup module.
 *
 * Every error lashup raises on purpose is a `LashupError` with a stable `code`
 * (`LASHUP_ERR_...`). Codes are part of the public surface: operators grep logs for them, the
 * HTTP API returns them, tests assert on them. A code, once released, keeps its meaning; a new
 * kind of failure gets a new code. Messages name the offending value and what would be valid.
 */

/** Free-form structured context attached to an error (logged and returned by the API). */
export type ErrorDetails = Readonly<Record<string, unknown>>;

export class LashupError extends Error {
  /** Stable machine-readable code, always `LASHUP_ERR_` followed by upper-case words. */
  readonly code: string;
  /** Structured context: the offending value, limits, names. Never contains secrets. */
  readonly details: ErrorDetails;

  constructor(code: string, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    if (!/^LASHUP_ERR_[A-Z0-9_]+$/.test(code)) {
      // A malformed code would silently break log searches and API clients; fail loudly in dev.
      throw new TypeError(`error code ${JSON.stringify(code)} must match LASHUP_ERR_[A-Z0-9_]+`);
    }
    this.code = code;
    this.details = details;
    this.name = new.target.name;
  }

  /** A plain object for logs and API responses. */
  toJSON(): { code: string; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** An argument given by a caller (API, CLI, config, another module) is outside what is valid. */
export class InvalidArgumentError extends LashupError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('LASHUP_ERR_INVALID_ARGUMENT', message, details);
  }
}

/** True when `err` is a LashupError, optionally with the given code. */
export function isLashupError(err: unknown, code?: string): err is LashupError {
  return err instanceof LashupError && (code === undefined || err.code === code);
}

/** Renders a value for an error message: short, quoted, never throwing. */
export function describeValue(value: unknown, maxChars = 80): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (value instanceof Uint8Array) text = `<${value.byteLength} bytes>`;
  else if (typeof value === 'function') text = '<function>';
  else if (typeof value === 'symbol') text = value.toString();
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
}
