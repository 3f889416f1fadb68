/**
 * The component contract of the daemon shell. A role is a list of components started in order
 * and stopped in reverse; a start that fails stops every component that already started, so a
 * failed start leaves no socket bound and no child process running, and the error names the
 * component. (Hand-written cleanup leaked: the node was made outside the try block, so libp2p
 * and UDP stayed bound when the store failed to open; a failure after the reconciler started
 * left it and the netlink helper running.)
 */
import { LashupError } from '../common/index.js';
import type { Logger } from '../log/index.js';
import type { ComponentRoute } from './api.js';

export interface Component {
  /** Short name, used in errors, logs and as the metrics prefix (`lashup_<name>_...`). */
  readonly name: string;
  /** Acquires what the component holds (sockets, child processes, timers). */
  start(): Promise<void> | void;
  /**
   * Releases it. `leave`: the node is leaving the cluster for good (say goodbye, remove what
   * it put in the kernel that outlives it); otherwise it may restart and adopt its state.
   * Called only after a successful start, once.
   */
  stop(leave: boolean): Promise<void> | void;
  /** Counters for /metrics (a plain object of numbers, booleans and records of numbers). */
  stats?(): object | undefined;
  /** Routes it adds to the HTTP API (the api component, started last, serves them). */
  routes?(): readonly ComponentRoute[];
}

export const ComponentErrorCode = {
  /** A component failed to start (details.component names it; the cause is attached). */
  Start: 'LASHUP_ERR_COMPONENT_START',
} as const;

export class ComponentStartError extends LashupError {
  constructor(
    readonly component: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(ComponentErrorCode.Start, `${component} could not start: ${reason}`, { component, ...(cause instanceof LashupError ? { causeCode: cause.code } : {}) }, { cause });
  }
}

/** Components started in order, stopped in reverse. */
export class ComponentRunner {
  private readonly started: Component[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  /**
   * Starts `components` in order; `beforeStart` runs before each (tests inject failures there).
   * On a failure, stops what started (in reverse) and throws a ComponentStartError.
   */
  async start(components: readonly Component[], beforeStart?: (name: string) => void): Promise<void> {
    for (const component of components) {
      try {
        beforeStart?.(component.name);
        await component.start();
      } catch (err) {
        this.logger.error({ component: component.name, err: err instanceof Error ? err.message : String(err) }, 'component failed to start; stopping the ones that started');
        await this.stop(false);
        throw new ComponentStartError(component.name, err);
      }
      this.started.push(component);
    }
  }

  /** Stops every started component in reverse order; a failing stop is logged and the rest still stop. */
  stop(leave: boolean): Promise<void> {
    this.stopping ??= (async () => {
      for (const component of this.started.splice(0).reverse()) {
        try {
          await component.stop(leave);
        } catch (err) {
          this.logger.error({ component: component.name, err: err instanceof Error ? err.message : String(err) }, 'component failed to stop cleanly');
        }
      }
    })();
    return this.stopping;
  }

  /** Stats of the started components that have some, by name. */
  stats(): Record<string, object | undefined> {
    const out: Record<string, object | undefined> = {};
    for (const c of this.started) if (c.stats !== undefined) out[c.name] = c.stats();
    return out;
  }

  /** API routes of the started components. */
  routes(): ComponentRoute[] {
    return this.started.flatMap((c) => [...(c.routes?.() ?? [])]);
  }

  /** Names of the started components, in start order. */
  names(): string[] {
    return this.started.map((c) => c.name);
  }
}
