export { createLogger, componentLogger, silentLogger, LOG_LEVELS } from './logger.js';
export type { Logger, LoggerOptions } from './logger.js';
