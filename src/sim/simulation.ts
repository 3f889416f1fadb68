/**
 * A simulation: one seed, one scheduler, one network. The seed fixes every random draw, so the
 * same seed gives the same run, bit for bit (compare `traceDigest()`).
 */
import { SeededRng, type Rng } from '../common/index.js';
import { Scheduler } from './scheduler.js';
import { SimNetwork, type NetworkOptions } from './network.js';

export interface SimulationOptions {
  /** The seed of every random draw in the run. */
  seed: number | string;
  network?: NetworkOptions;
  /** Wall-clock epoch at virtual time 0 (see Scheduler). */
  epochMs?: number;
}

export class Simulation {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  /** A generator for the test's own choices (which node to crash, which key to write...). */
  readonly rng: Rng;

  constructor(options: SimulationOptions) {
    const root = new SeededRng(options.seed);
    this.scheduler = new Scheduler(options.epochMs === undefined ? {} : { epochMs: options.epochMs });
    this.network = new SimNetwork(this.scheduler, root.fork('network'), options.network);
    this.rng = root.fork('test');
  }

  nowMs(): number {
    return this.scheduler.nowMs();
  }

  runFor(durationMs: number): number {
    return this.scheduler.runFor(durationMs);
  }

  traceDigest(): string {
    return this.scheduler.trace.digest();
  }
}
