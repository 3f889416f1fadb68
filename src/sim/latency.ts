/**
 * One-way link latency models. Each draw uses the simulation's seeded generator, so a latency
 * sequence is reproducible.
 */
import { InvalidArgumentError, type Rng } from '../common/index.js';

export type LatencyModel =
  /** Every packet takes exactly `ms`. */
  | { kind: 'constant'; ms: number }
  /** Uniform in [minMs, maxMs]. */
  | { kind: 'uniform'; minMs: number; maxMs: number }
  /** Normal(meanMs, stdDevMs), clamped below at `minMs` (default 0). */
  | { kind: 'normal'; meanMs: number; stdDevMs: number; minMs?: number }
  /** `minMs` plus an exponential tail with mean `meanExtraMs`: a long-tailed WAN-like link. */
  | { kind: 'exponential'; minMs: number; meanExtraMs: number };

export function validateLatencyModel(model: LatencyModel, path = 'latency'): void {
  const bad = (field: string, value: unknown, valid: string): never => {
    throw new InvalidArgumentError(`${path}.${field} = ${String(value)} is not valid; expected ${valid}`, {
      path: `${path}.${field}`,
      value,
    });
  };
  const nonNegative = (field: string, value: number): void => {
    if (!Number.isFinite(value) || value < 0) bad(field, value, 'a finite number >= 0');
  };
  switch (model.kind) {
    case 'constant':
      nonNegative('ms', model.ms);
      return;
    case 'uniform':
      nonNegative('minMs', model.minMs);
      nonNegative('maxMs', model.maxMs);
      if (model.maxMs < model.minMs) bad('maxMs', model.maxMs, `a number >= minMs (${model.minMs})`);
      return;
    case 'normal':
      nonNegative('meanMs', model.meanMs);
      nonNegative('stdDevMs', model.stdDevMs);
      if (model.minMs !== undefined) nonNegative('minMs', model.minMs);
      return;
    case 'exponential':
      nonNegative('minMs', model.minMs);
      nonNegative('meanExtraMs', model.meanExtraMs);
      return;
    default:
      bad('kind', (model as { kind: unknown }).kind, 'one of constant, uniform, normal, exponential');
  }
}

/** Draws one latency in milliseconds (>= 0). */
export function sampleLatencyMs(model: LatencyModel, rng: Rng): number {
  switch (model.kind) {
    case 'constant':
      return model.ms;
    case 'uniform':
      return model.minMs + (model.maxMs - model.minMs) * rng.next();
    case 'normal': {
      // Box–Muller; 1 - next() is in (0, 1], so the logarithm is finite.
      const u1 = 1 - rng.next();
      const u2 = rng.next();
      const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      return Math.max(model.minMs ?? 0, model.meanMs + model.stdDevMs * z);
    }
    case 'exponential':
      return model.minMs - model.meanExtraMs * Math.log(1 - rng.next());
  }
}
