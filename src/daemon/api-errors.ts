/**
 * API errors carry their HTTP status in their type: the server answers `{ code, message }` with
 * `status`, and nothing compares code strings to choose one. An error that is not an ApiError is
 * a server fault (500) unless it is a LashupError, whose code is still returned.
 */
import { LashupError, type ErrorDetails } from '../common/index.js';

export class ApiError extends LashupError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(code, message, details);
  }
}

/** 400: the request is malformed (path, query, body). */
export class BadRequestError extends ApiError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(400, 'LASHUP_ERR_BAD_REQUEST', message, details);
  }
}

/** 401: the request lacks the credentials this listener requires (the TCP API's token). */
export class UnauthorizedError extends ApiError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(401, code, message, details);
  }
}

/** 403: the request is refused for where it comes from (a browser, a foreign Host). */
export class ForbiddenError extends ApiError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(403, code, message, details);
  }
}

/** 413: the request carries a body larger than any route takes. */
export class PayloadTooLargeError extends ApiError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(413, 'LASHUP_ERR_PAYLOAD_TOO_LARGE', message, details);
  }
}

/** 404: no such route, key, network or component on this node. */
export class NotFoundError extends ApiError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(404, code, message, details);
  }
}

/** 405: the path exists with other methods. */
export class MethodNotAllowedError extends ApiError {
  constructor(
    message: string,
    readonly allowed: readonly string[],
  ) {
    super(405, 'LASHUP_ERR_METHOD_NOT_ALLOWED', message, { allowed });
  }
}

/** 409: the request is valid but this node or the cluster's state refuses it now. */
export class ConflictError extends ApiError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(409, code, message, details);
  }
}

/** 421: ask another node (a follower asked for what only the Raft leader does). */
export class MisdirectedError extends ApiError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(421, code, message, details);
  }
}

/** 503: the daemon cannot answer yet (starting) or any more (stopping). */
export class UnavailableError extends ApiError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(503, code, message, details);
  }
}
