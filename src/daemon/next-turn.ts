/**
 * Work a lease listener puts off to a later turn of the event loop. The turn that delivers a new
 * lease runs every component's listener, and the overlay entry the overlay agent publishes in
 * it leaves the process only when that turn ends (gossipsub sends from promise continuations):
 * every other agent's route to this one waited for the listeners' synchronous work. Measured in
 * the e2e benchmark (16 agents): 14-116 ms per lease, mostly the CNI configuration files (written
 * and fsynced: 5-83 ms) and the overlay agent's own devices (which it puts off the same way).
 * Work that reads the current state when it runs loses nothing by running a turn later.
 */
export interface NextTurn {
  /** Runs the work in a later turn, once however often asked before then. */
  request(): void;
  /** Drops a pending run (a component stopping). */
  cancel(): void;
}

export function nextTurn(work: () => void): NextTurn {
  let pending: NodeJS.Immediate | undefined;
  return {
    request: () => {
      pending ??= setImmediate(() => {
        pending = undefined;
        work();
      });
    },
    cancel: () => {
      if (pending !== undefined) clearImmediate(pending);
      pending = undefined;
    },
  };
}
