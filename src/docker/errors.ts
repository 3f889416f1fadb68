import { LashupError, type ErrorDetails } from '../common/index.js';

export const DockerErrorCode = {
  /** No Docker daemon answers on the socket (absent, stopped, or the socket is not there). */
  Unreachable: 'LASHUP_ERR_DOCKER_UNREACHABLE',
  /** The Docker daemon did not answer within the timeout. */
  Timeout: 'LASHUP_ERR_DOCKER_TIMEOUT',
  /** The Engine API answered with an error status (details: status, method, path). */
  Api: 'LASHUP_ERR_DOCKER_API',
  /** The Engine API answered with something that is not what the API documents. */
  BadResponse: 'LASHUP_ERR_DOCKER_BAD_RESPONSE',
  /** A docker.* configuration field is invalid. */
  InvalidConfig: 'LASHUP_ERR_DOCKER_INVALID_CONFIG',
} as const;

export type DockerErrorCode = (typeof DockerErrorCode)[keyof typeof DockerErrorCode];

export class DockerError extends LashupError {
  declare readonly code: DockerErrorCode;

  constructor(code: DockerErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
