/**
 * The logger libp2p's components get. libp2p's default (`@libp2p/logger`, on the `debug`-style
 * `weald`) builds two debug instances for every logger it hands out, and it hands one out for
 * every connection, stream, dial and identify exchange: each creation parses the enabled
 * namespaces and asks whether standard error is a terminal (an `isatty` system call). In a
 * 60-node formation profile that was ~2 % of the CPU (createDebug, isatty, the namespace regexes)
 * spent on loggers that never print: the daemon logs through pino, and libp2p's debug output is
 * off unless `DEBUG` names it.
 *
 * So: with `DEBUG` unset (or naming nothing), one shared logger that does nothing; with `DEBUG`
 * set, libp2p's own default (undefined here), so `DEBUG=libp2p:*` still shows libp2p's
 * internals when debugging a node.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface';

const noop = (): void => {};

/** A logger that drops everything; its scopes are itself (no allocation per scope). */
export const SILENT_LOGGER: Logger = Object.assign((_formatter: unknown, ..._args: unknown[]): void => {}, {
  error: noop,
  trace: noop,
  enabled: false,
  newScope: (_name: string): Logger => SILENT_LOGGER,
});

const SILENT: ComponentLogger = { forComponent: (_name: string): Logger => SILENT_LOGGER };

/**
 * The ComponentLogger to give createLibp2p: the silent one unless `debugEnv` (the `DEBUG`
 * environment variable) names something, in which case undefined (libp2p's default logger).
 */
export function libp2pLogger(debugEnv: string | undefined): ComponentLogger | undefined {
  return debugEnv === undefined || debugEnv.trim() === '' ? SILENT : undefined;
}
