/**
 * Lifeguard's local health awareness (Dadgar, Phillips, Currey: "Lifeguard: Local Health
 * Awareness for More Accurate Failure Detection", 2018).
 *
 * A node that is itself slow (CPU starved, a bad NIC, a full socket buffer) misses acks and
 * would accuse healthy members. Instead it keeps a score: failed probes whose expected nacks did
 * not come back, and having to refute suspicion about itself, raise it; successful probes lower
 * it. The node stretches its probe interval and timeout by (score + 1), probing less and waiting
 * longer while it is unhealthy.
 */
export class Awareness {
  private score = 0;

  /** @param maxMultiplier the largest factor (score stays in [0, maxMultiplier - 1]) */
  constructor(private readonly maxMultiplier: number) {}

  /** Adds `delta` to the score, clamped. */
  apply(delta: number): void {
    this.score = Math.min(this.maxMultiplier - 1, Math.max(0, this.score + delta));
  }

  get health(): number {
    return this.score;
  }

  /** `durationMs` stretched by the current multiplier. */
  scale(durationMs: number): number {
    return durationMs * (this.score + 1);
  }
}
