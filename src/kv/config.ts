/**
 * Replicated store configuration. Every field is validated by `kvConfig`; an error names the
 * field, the bad value and what is valid.
 */
import { KvError, KvErrorCode } from './errors.js';

export interface KvConfig {
  /**
   * Largest encoded size of one key's value (its CRDT state), in bytes. A local update beyond it
   * is refused with LASHUP_ERR_KV_VALUE_TOO_LARGE. Default 8 MiB: the overlay map of a 10,000-agent
   * cluster is about 2 MiB; anything near the limit is a data-model mistake, not growth.
   */
  maxValueBytes: number;
  /** Most keys (removed keys included: they keep their causal context). Default 100,000. */
  maxKeys: number;
  /**
   * Remote deltas waiting to be applied, at most. Beyond it deltas are dropped and counted;
   * anti-entropy repairs what they carried. Default 10,000: a burst far above any normal rate.
   */
  maxInboundDeltas: number;
  /** Remote deltas applied per event-loop turn, so a burst cannot starve timers. Default 500. */
  inboundBatch: number;
  /**
   * Time between anti-entropy rounds with one random peer, in ms; 0 disables. Two equal
   * replicas spend one round trip and about 1 KB per round, but a round opens a stream (a
   * multistream negotiation and a few encrypted frames each way): at 5 s that was a third of an
   * idle node's CPU. Pushes over gossipsub (TCP) are rarely lost, so anti-entropy is the safety
   * net, as Serf's 30 s push-pull is. Default 30,000.
   */
  antiEntropyIntervalMs: number;
  /**
   * Time before the next anti-entropy round after one that found the two replicas different
   * (as initiator or responder), in ms; 0 disables, and so does antiEntropyIntervalMs = 0. Differences mean
   * this part of the cluster has not converged (a cluster starting, a partition healing, deltas
   * published before any peer subscribed): rounds repeat quickly while they find work and fall
   * back to the full interval once they find the replicas equal, so a missed write spreads in
   * about log2(N) quick rounds (pull and push each round) instead of log2(N) full intervals.
   * Default 1,000: a 60-node cluster that lost three nodes' first writes held them everywhere
   * after 60 s at the 30 s interval alone. A round that failed is retried after 1, 2 and 4 x
   * this (three failures in a row at most), then the interval rules until a round succeeds.
   */
  antiEntropyCatchUpIntervalMs: number;
  /** Longest an anti-entropy round may take, in ms. Default 10,000. */
  antiEntropyTimeoutMs: number;
  /** Largest anti-entropy message, in bytes; longer lists are chunked. Default 1 MiB. */
  maxMessageBytes: number;
}

export const DEFAULT_KV_CONFIG: Readonly<KvConfig> = {
  maxValueBytes: 8 * 1024 * 1024,
  maxKeys: 100_000,
  maxInboundDeltas: 10_000,
  inboundBatch: 500,
  antiEntropyIntervalMs: 30_000,
  antiEntropyCatchUpIntervalMs: 1000,
  antiEntropyTimeoutMs: 10_000,
  maxMessageBytes: 1024 * 1024,
};

function integerIn(config: Record<string, unknown>, field: string, min: number, max: number): void {
  const value = config[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new KvError(KvErrorCode.InvalidConfig, `kv.${field} = ${JSON.stringify(value)} is not valid; expected an integer from ${min} to ${max}`, {
      field: `kv.${field}`,
      value,
    });
  }
}

export function kvConfig(overrides: Partial<KvConfig> = {}): KvConfig {
  const config = { ...DEFAULT_KV_CONFIG, ...overrides };
  const c = config as unknown as Record<string, unknown>;
  for (const key of Object.keys(c)) {
    if (!(key in DEFAULT_KV_CONFIG)) {
      throw new KvError(KvErrorCode.InvalidConfig, `kv.${key} is not a kv setting; valid: ${Object.keys(DEFAULT_KV_CONFIG).join(', ')}`, { field: `kv.${key}` });
    }
  }
  integerIn(c, 'maxValueBytes', 1024, 256 * 1024 * 1024);
  integerIn(c, 'maxKeys', 1, 10_000_000);
  integerIn(c, 'maxInboundDeltas', 1, 10_000_000);
  integerIn(c, 'inboundBatch', 1, 1_000_000);
  integerIn(c, 'antiEntropyIntervalMs', 0, 24 * 3600_000);
  integerIn(c, 'antiEntropyCatchUpIntervalMs', 0, 24 * 3600_000);
  integerIn(c, 'antiEntropyTimeoutMs', 1, 3600_000);
  integerIn(c, 'maxMessageBytes', 64 * 1024, 64 * 1024 * 1024);
  return config;
}
