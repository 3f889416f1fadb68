/**
 * Time as an input. Protocol cores never read the system clock; they are handed a `Clock` (the
 * real one in the daemon, a virtual one in tests and simulations), so that a simulation of
 * thousands of nodes runs in seconds and a failing seed replays exactly.
 */

export interface TimerHandle {
  /** Cancels the timer; calling it after the timer fired or twice is a no-op. */
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds since an arbitrary origin; never goes backwards. Use for intervals. */
  nowMs(): number;
  /** Milliseconds since the Unix epoch. May jump; use only for timestamps shared across nodes. */
  wallMs(): number;
  /** Calls `fn` once, `delayMs` (>= 0) from now. */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
}

/** The system clock: `performance.now()` for intervals, `Date.now()` for wall time. */
export class RealClock implements Clock {
  /**
   * @param unrefTimers when true, pending timers do not keep the process alive (for helpers
   *   whose owner holds the process open by other means, such as sockets).
   */
  constructor(private readonly unrefTimers = false) {}

  nowMs(): number {
    return performance.now();
  }

  wallMs(): number {
    return Date.now();
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    if (delayMs <= 0) {
      // "As soon as possible": setImmediate runs right after the current I/O phase, where
      // setTimeout(0) waits for the next timers phase (1 ms or more). The store coalesces its
      // events and drains its inbound queue this way: two such hops were 5-10 ms of every
      // update's delivery on a loaded event loop.
      const immediate = setImmediate(fn);
      if (this.unrefTimers) immediate.unref();
      return { cancel: () => clearImmediate(immediate) };
    }
    const handle = setTimeout(fn, delayMs);
    if (this.unrefTimers) handle.unref();
    return { cancel: () => clearTimeout(handle) };
  }
}
