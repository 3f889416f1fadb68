/**
 * One pino root logger per process; every component logs through a child that carries
 * `{ component: '<name>' }`, so a line can always be traced to the module that wrote it.
 */
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  /** Minimum level written. Default `info`, or `LASHUP_LOG_LEVEL` when set. */
  level?: LevelWithSilent;
  /** Where lines go; default standard error, so standard output stays free for CLI results. */
  destination?: DestinationStream;
  /** Fields on every line (for example `{ node: 'agent-3' }` in multi-node processes). */
  base?: Record<string, unknown>;
}

function levelFromEnv(): LevelWithSilent | undefined {
  const raw = process.env['LASHUP_LOG_LEVEL'];
  if (raw === undefined || raw === '') return undefined;
  if ((LOG_LEVELS as readonly string[]).includes(raw)) return raw as LevelWithSilent;
  throw new RangeError(`LASHUP_LOG_LEVEL=${JSON.stringify(raw)} is not a level; valid: ${LOG_LEVELS.join(', ')}`);
}

/** Creates a root logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? levelFromEnv() ?? 'info';
  const destination = options.destination ?? pino.destination({ fd: 2, sync: false });
  return pino({ level, base: options.base ?? { pid: process.pid } }, destination);
}

/** A child logger for one component. */
export function componentLogger(root: Logger, component: string): Logger {
  return root.child({ component });
}

/** A logger that writes nothing: the default for library code and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
