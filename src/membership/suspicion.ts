/**
 * Lifeguard's dogpile suspicion timeout.
 *
 * A suspicion starts with the long timeout `max` and shrinks toward `min` as independent
 * confirmations (suspect messages from other members) arrive:
 *
 *   timeout(c) = max(min, max - (max - min) * log(c + 1) / log(k + 1))
 *
 * where k is the number of confirmations expected. A member suspected by one prober with a bad
 * link gets the long timeout and time to refute; a member everyone agrees is gone is declared
 * failed after the short one.
 */

/** min = suspicionMult * max(1, log10(N)) * probeIntervalMs. */
export function suspicionMinMs(suspicionMult: number, members: number, probeIntervalMs: number): number {
  return suspicionMult * Math.max(1, Math.log10(Math.max(1, members))) * probeIntervalMs;
}

/**
 * The minimum for a suspicion this node backs with a refused connection: suspicionMult *
 * probeIntervalMs, without the log10(N) factor.
 *
 * Why a refusal may end a suspicion sooner: the timeout exists for a member that is alive but
 * slow or cut off, so that it hears it is suspected and refutes; news of the suspicion takes
 * about log(N) gossip rounds to reach it, hence the factor. A refused connection is the
 * member's own kernel saying nothing listens on its port any more (or its libp2p node no longer
 * serves membership's ping: the transport maps both to ConnectionRefused, and a daemon that
 * stops without leaving is gone as well): an overloaded process still
 * has its listener (the kernel completes the handshake into the backlog, and the stream then
 * times out, which is no refusal), a partition drops packets (a timeout). What is left to wait
 * for is a process restarting on the same port; it learns of its suspicion from its join sync
 * with a seed, one exchange whatever the cluster's size, so no log(N) is owed. Measured before
 * (bench cluster, 200 nodes, every victim a killed process): SIGKILL -> failed at all 4.8 s,
 * nearly all of it the 4.6 s minimum. A firewall that rejects with a reset looks like a refusal
 * and gets the shorter timeout; a powered-off host, whose packets vanish, does not.
 */
export function refusedSuspicionMinMs(suspicionMult: number, probeIntervalMs: number): number {
  return suspicionMinMs(suspicionMult, 1, probeIntervalMs);
}

/** The timeout after `confirmations` of `expected`. */
export function suspicionTimeoutMs(confirmations: number, expected: number, minMs: number, maxMs: number): number {
  if (expected < 1) return minMs;
  const fraction = Math.log(confirmations + 1) / Math.log(expected + 1);
  return Math.max(minMs, Math.floor(maxMs - (maxMs - minMs) * fraction));
}

/** Confirmations expected: `wanted`, or none in a cluster too small to supply them. */
export function expectedConfirmations(wanted: number, members: number): number {
  return members - 2 < wanted ? 0 : Math.max(0, wanted);
}

/** One running suspicion: who confirmed it and when it expires. */
export class Suspicion {
  private readonly confirmers = new Set<string>();
  /** This node's own probe was refused: the member's process is gone (see refusedSuspicionMinMs). */
  refused = false;
  /** The last-chance ping went out at the first expiry; the next expiry declares. */
  lastChanceSent = false;

  /**
   * @param startedAtMs when the suspicion began
   * @param from the member whose suspicion started it (it does not count as a confirmation)
   */
  constructor(
    readonly incarnation: number,
    readonly startedAtMs: number,
    from: string,
    private readonly expected: number,
    private min: number,
    private max: number,
  ) {
    this.confirmers.add(from);
  }

  get minMs(): number {
    return this.min;
  }

  get maxMs(): number {
    return this.max;
  }

  /**
   * Lowers the timeouts to `minMs` / `maxMs` (from the suspicion's start, as before); true when
   * that shortened them. Never lengthens: a suspicion only ever gets closer to its end.
   */
  shorten(minMs: number, maxMs: number): boolean {
    if (minMs >= this.min && maxMs >= this.max) return false;
    this.min = Math.min(this.min, minMs);
    this.max = Math.max(this.min, Math.min(this.max, maxMs));
    return true;
  }

  get confirmations(): number {
    return this.confirmers.size - 1;
  }

  /**
   * Records a suspicion from `from`; true when it is a new, counted confirmation. None counts once
   * the last-chance ping is out: the deadline has passed, and nothing may cut that wait short.
   */
  confirm(from: string): boolean {
    if (this.lastChanceSent || this.confirmations >= this.expected || this.confirmers.has(from)) return false;
    this.confirmers.add(from);
    return true;
  }

  /** When the suspicion expires, given the confirmations so far. */
  deadlineMs(): number {
    return this.startedAtMs + suspicionTimeoutMs(this.confirmations, this.expected, this.minMs, this.maxMs);
  }
}
