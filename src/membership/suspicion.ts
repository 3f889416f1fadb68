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

  /**
   * @param startedAtMs when the suspicion began
   * @param from the member whose suspicion started it (it does not count as a confirmation)
   */
  constructor(
    readonly incarnation: number,
    readonly startedAtMs: number,
    from: string,
    private readonly expected: number,
    readonly minMs: number,
    readonly maxMs: number,
  ) {
    this.confirmers.add(from);
  }

  get confirmations(): number {
    return this.confirmers.size - 1;
  }

  /** Records a suspicion from `from`; true when it is a new, counted confirmation. */
  confirm(from: string): boolean {
    if (this.confirmations >= this.expected || this.confirmers.has(from)) return false;
    this.confirmers.add(from);
    return true;
  }

  /** When the suspicion expires, given the confirmations so far. */
  deadlineMs(): number {
    return this.startedAtMs + suspicionTimeoutMs(this.confirmations, this.expected, this.minMs, this.maxMs);
  }
}
