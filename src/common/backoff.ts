/**
 * Exponential backoff on an injected Rng: each `next()` gives a delay, then the base doubles up to
 * `maxMs`; `reset()` after a success starts again from `initialMs`. With a spread, each delay is
 * drawn around the base, so that nodes refused together (a busy seed, a master without quorum)
 * do not all come back at the same moment. It replaces five hand-written copies (join retries,
 * lease requests, reconciler retries, the netlink helper's restarts, firewall applies).
 */
import type { Rng } from './rng.js';

export interface BackoffOptions {
  /** First delay, in milliseconds (> 0). */
  initialMs: number;
  /** Largest base delay, in milliseconds (>= initialMs). */
  maxMs: number;
  /**
   * Random spread as a fraction of the base delay d: delays are drawn from
   * [d(1 - spread/2), d(1 + spread/2)). 0 (default): exactly d. Needs `rng` when above 0.
   */
  spread?: number;
  rng?: Rng;
}

export class Backoff {
  private baseMs: number;
  /** Delays handed out since the last reset. */
  attempts = 0;

  constructor(private readonly options: BackoffOptions) {
    if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs)) {
      throw new RangeError(`backoff initialMs = ${options.initialMs}, maxMs = ${options.maxMs}; expected 0 < initialMs <= maxMs`);
    }
    const spread = options.spread ?? 0;
    if (!(spread >= 0 && spread <= 2) || (spread > 0 && options.rng === undefined)) {
      throw new RangeError(`backoff spread = ${spread}; expected 0 to 2, with an rng when above 0`);
    }
    this.baseMs = options.initialMs;
  }

  /** The base delay the next `next()` is drawn around. */
  get currentMs(): number {
    return this.baseMs;
  }

  /** The delay to wait now; the base doubles for the next one. */
  next(): number {
    const d = this.baseMs;
    this.baseMs = Math.min(this.options.maxMs, d * 2);
    this.attempts++;
    const spread = this.options.spread ?? 0;
    if (spread === 0 || this.options.rng === undefined) return d;
    const width = Math.floor(d * spread);
    return Math.floor(d - width / 2) + this.options.rng.int(Math.max(1, width));
  }

  reset(): void {
    this.baseMs = this.options.initialMs;
    this.attempts = 0;
  }
}
