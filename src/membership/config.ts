/**
 * Membership configuration: SWIM timing, Lifeguard knobs, dissemination and sync.
 *
 * Three profiles, after the ones HashiCorp memberlist ships (their figures have a decade of
 * production behind them), plus lashup's own additions (eager gossip, digest sync, reconnect):
 * - `lan`: one data centre, sub-millisecond to few-millisecond round trips. The default.
 * - `wan`: members across regions, round trips of tens to hundreds of milliseconds.
 * - `local`: one machine or a test network; fast detection, little tolerance for slowness.
 *
 * Every field is validated at construction (`membershipConfig`); an error names the field, the
 * bad value and what would be valid.
 */
import { MembershipError, MembershipErrorCode } from './errors.js';

export interface MembershipConfig {
  /**
   * Time between two failure-detection probes of this node, in ms. Each interval the node
   * probes one member, so a crashed member is probed by someone within about interval / N.
   * Shorter detects faster and costs one ping and ack more per node per interval. Lifeguard
   * stretches it by the local health multiplier when this node itself is unhealthy.
   * LAN 1,000 (memberlist), WAN 5,000, local 1,000.
   */
  probeIntervalMs: number;
  /**
   * How long a probe waits for a direct ack before asking others to probe indirectly, in ms.
   * Must sit above the 99th percentile round trip, or healthy members get indirect probes.
   * LAN 500, WAN 3,000, local 200. Must be below probeIntervalMs.
   */
  probeTimeoutMs: number;
  /**
   * Members asked to probe a target indirectly (ping-req) when the direct probe timed out.
   * More helpers make a false suspicion from a single bad link less likely, at one packet pair
   * each. Default 3 in every profile (SWIM's k).
   */
  indirectChecks: number;
  /**
   * Whether a failed direct probe is also tried over a reliable stream, concurrently with the
   * indirect probes. It rescues members behind lossy links (a UDP ping and its ack both have to
   * arrive; a stream retransmits) at the cost of a connection per failed probe. Default true.
   */
  reliableProbeFallback: boolean;
  /**
   * Each membership update is retransmitted retransmitMult * ceil(log10(N + 1)) times. Higher
   * makes a lost update less likely to leave a member uninformed, at proportional bandwidth.
   * LAN 4, WAN 4 (memberlist), local 2. 3 on a LAN saved a fifth of the bytes of churn in
   * bench/membership.ts, but in 25-node simulations a metadata update then missed a member now
   * and then until the next push-pull: not worth it for routes.
   */
  retransmitMult: number;
  /**
   * Scales the suspicion timeout: min = suspicionMult * max(1, log10(N)) * probeIntervalMs.
   * Higher tolerates longer stalls before declaring a member failed; lower detects faster.
   * LAN 2: a member whose host goes silent is failed everywhere about 3.5 s after it at 30
   * members, 5 s at 100 (memberlist's 4 takes twice that; a member must stay unreachable for the
   * whole minimum, after it was confirmed by suspicionConfirmations others, to be failed).
   * WAN 6 (memberlist), local 2. A suspicion this node backs with a refused connection (the
   * member's port has no listener: its process is gone) drops the log10(N) factor, so a crashed
   * daemon on a live host is failed after about 2 s on a LAN at any size (see
   * refusedSuspicionMinMs; metric suspicionsRefused).
   */
  suspicionMult: number;
  /**
   * Independent confirmations (suspicions from other members) that bring the suspicion timeout
   * down from its maximum to its minimum (Lifeguard's k). With fewer members than k + 2 none
   * are expected and the minimum applies. LAN 2 (memberlist's suspicionMult - 2), WAN 4, local 1.
   */
  suspicionConfirmations: number;
  /**
   * The suspicion timeout starts at this multiple of its minimum and shrinks toward the minimum
   * as independent confirmations arrive (Lifeguard's dogpile). A suspicion nobody confirms
   * (one prober with a bad link) waits the long timeout, giving the member time to refute.
   * Default 6 in every profile.
   */
  suspicionMaxTimeoutMult: number;
  /**
   * Upper bound of Lifeguard's local health multiplier: an unhealthy node stretches its own
   * probe interval and timeout up to this factor instead of accusing healthy members.
   * Default 8 (memberlist).
   */
  awarenessMaxMultiplier: number;
  /**
   * Time between gossip rounds that send pending updates to gossipNodes random members, in ms.
   * A round with nothing to send sends nothing. LAN 200 (Serf), WAN 500, local 100.
   */
  gossipIntervalMs: number;
  /** Members each gossip round sends to. LAN 3 (Serf), WAN 4, local 3. */
  gossipNodes: number;
  /**
   * Eager gossip: when this node learns an update it has not sent yet, it starts a gossip round
   * after this delay instead of waiting for the next tick; 0 disables. An update then hops at
   * network speed instead of one gossip interval per hop, with the same number of
   * retransmissions (the retransmit limit is unchanged), so dissemination is faster at the same
   * bytes. The delay batches updates that arrive together. Default 5 ms in every profile.
   */
  gossipEagerDelayMs: number;
  /**
   * Members declared dead or left still receive gossip for this long, in ms, so that one that
   * was wrongly declared dead hears it and refutes. LAN 30,000, WAN 60,000, local 15,000.
   */
  gossipToTheDeadMs: number;
  /**
   * Time between full-state syncs with one member (a connected peer when the runtime names some,
   * else a random member), in ms, before scaling: above 32 members it is multiplied by
   * ceil(log2(N) - log2(32)) + 1 so the cluster's total sync load grows slowly. 0 disables
   * periodic syncs (joins still sync). Syncs exchange bucket digests first, so two agreeing
   * members spend a few hundred bytes. LAN 30,000, WAN 60,000, local 15,000.
   */
  pushPullIntervalMs: number;
  /**
   * Time before the next sync after one this node started that taught it members it did not
   * know, in ms (jittered by +-50 %); 0 disables. Learning members means the cluster is forming
   * or merging: syncs repeat while they teach something and fall back to pushPullIntervalMs after
   * the first that does not. Catch-up syncs go to a connected peer when the runtime names some
   * (the libp2p runtime: the kept peers), so they cost a stream, not a handshake. LAN and WAN
   * 5,000, local 1,000: gossip alone spread 200 simultaneous joins in about 75 s on two cores
   * (each alive message rides a few packets at a time, and the periodic sync is 120 s at 200);
   * with 5,000 in about 59 s. At 2,000, a process hosting 25 of those nodes stopped answering
   * for over 10 s under the extra syncs.
   */
  pushPullCatchUpIntervalMs: number;
  /** Time a state sync may take before it is abandoned, in ms. LAN 10,000, WAN 30,000, local 5,000. */
  syncTimeoutMs: number;
  /**
   * Time between attempts to sync with a random member believed failed (not left), in ms; 0
   * disables. This is how the two sides of a healed partition find each other again once the
   * gossip-to-the-dead window has passed. LAN 30,000, WAN 60,000, local 5,000.
   */
  reconnectIntervalMs: number;
  /** First retry delay of a join that reached no seed, in ms; doubles up to joinRetryMaxMs. Default 1,000. */
  joinRetryMinMs: number;
  /** Largest delay between join attempts, in ms. Default 30,000. */
  joinRetryMaxMs: number;
  /**
   * How long dead and left members are remembered before they are reaped, in ms. While
   * remembered, a stale message cannot bring them back, and failed members are retried by
   * reconnect. LAN 24 h (as Serf's reconnect timeout), WAN 72 h, local 60,000.
   */
  tombstoneTimeoutMs: number;
  /** Largest packet sent, in bytes (payload before encryption). Default 1,400: fits a 1,500 MTU. */
  maxPacketBytes: number;
  /** Longest a graceful leave waits for its announcement to be sent, in ms. Default 2,000. */
  leavePropagateMs: number;
}

export type MembershipProfile = 'lan' | 'wan' | 'local';

const LAN: MembershipConfig = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  reliableProbeFallback: true,
  retransmitMult: 4,
  suspicionMult: 2,
  suspicionConfirmations: 2,
  suspicionMaxTimeoutMult: 6,
  awarenessMaxMultiplier: 8,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipEagerDelayMs: 5,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
  pushPullCatchUpIntervalMs: 5000,
  syncTimeoutMs: 10_000,
  reconnectIntervalMs: 30_000,
  joinRetryMinMs: 1000,
  joinRetryMaxMs: 30_000,
  tombstoneTimeoutMs: 24 * 3600_000,
  maxPacketBytes: 1400,
  leavePropagateMs: 2000,
};

export const MEMBERSHIP_PROFILES: Readonly<Record<MembershipProfile, Readonly<MembershipConfig>>> = {
  lan: LAN,
  wan: {
    ...LAN,
    probeIntervalMs: 5000,
    probeTimeoutMs: 3000,
    suspicionMult: 6,
    suspicionConfirmations: 4,
    gossipIntervalMs: 500,
    gossipNodes: 4,
    gossipToTheDeadMs: 60_000,
    pushPullIntervalMs: 60_000,
    syncTimeoutMs: 30_000,
    reconnectIntervalMs: 60_000,
    tombstoneTimeoutMs: 72 * 3600_000,
  },
  local: {
    ...LAN,
    probeTimeoutMs: 200,
    retransmitMult: 2,
    suspicionMult: 2,
    suspicionConfirmations: 1,
    gossipIntervalMs: 100,
    gossipToTheDeadMs: 15_000,
    pushPullIntervalMs: 15_000,
    pushPullCatchUpIntervalMs: 1000,
    syncTimeoutMs: 5000,
    reconnectIntervalMs: 5000,
    tombstoneTimeoutMs: 60_000,
  },
};

/** Smallest packet the protocol can work with: a ping with a long name and one update must fit. */
export const MIN_PACKET_BYTES = 512;

function invalid(field: string, value: unknown, expected: string): never {
  throw new MembershipError(MembershipErrorCode.InvalidConfig, `membership.${field} = ${JSON.stringify(value)} is not valid; expected ${expected}`, { field: `membership.${field}`, value });
}

function integerIn(config: Record<string, unknown>, field: string, min: number, max: number): void {
  const value = config[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(field, value, `an integer from ${min} to ${max}`);
  }
}

/** The profile's config with `overrides` applied, validated. */
export function membershipConfig(profile: MembershipProfile = 'lan', overrides: Partial<MembershipConfig> = {}): MembershipConfig {
  const base = MEMBERSHIP_PROFILES[profile];
  if (base === undefined) invalid('profile', profile, `one of ${Object.keys(MEMBERSHIP_PROFILES).join(', ')}`);
  const config = { ...base, ...overrides };
  validateMembershipConfig(config);
  return config;
}

export function validateMembershipConfig(config: MembershipConfig): void {
  const c = config as unknown as Record<string, unknown>;
  const known = new Set(Object.keys(LAN));
  for (const key of Object.keys(c)) if (!known.has(key)) invalid(key, c[key], `no such field (valid: ${[...known].join(', ')})`);
  const hour = 3600_000;
  integerIn(c, 'probeIntervalMs', 10, hour);
  integerIn(c, 'probeTimeoutMs', 1, hour);
  if (config.probeTimeoutMs >= config.probeIntervalMs) {
    invalid('probeTimeoutMs', config.probeTimeoutMs, `a value below probeIntervalMs (${config.probeIntervalMs})`);
  }
  integerIn(c, 'indirectChecks', 0, 16);
  if (typeof config.reliableProbeFallback !== 'boolean') invalid('reliableProbeFallback', config.reliableProbeFallback, 'true or false');
  integerIn(c, 'retransmitMult', 1, 64);
  integerIn(c, 'suspicionMult', 1, 64);
  integerIn(c, 'suspicionConfirmations', 0, 64);
  integerIn(c, 'suspicionMaxTimeoutMult', 1, 64);
  integerIn(c, 'awarenessMaxMultiplier', 1, 64);
  integerIn(c, 'gossipIntervalMs', 1, hour);
  integerIn(c, 'gossipNodes', 1, 64);
  integerIn(c, 'gossipEagerDelayMs', 0, hour);
  integerIn(c, 'gossipToTheDeadMs', 0, 24 * hour);
  integerIn(c, 'pushPullIntervalMs', 0, 24 * hour);
  integerIn(c, 'pushPullCatchUpIntervalMs', 0, 24 * hour);
  integerIn(c, 'syncTimeoutMs', 1, hour);
  integerIn(c, 'reconnectIntervalMs', 0, 24 * hour);
  integerIn(c, 'joinRetryMinMs', 1, hour);
  integerIn(c, 'joinRetryMaxMs', config.joinRetryMinMs, 24 * hour);
  integerIn(c, 'tombstoneTimeoutMs', 1000, 365 * 24 * hour);
  integerIn(c, 'maxPacketBytes', MIN_PACKET_BYTES, 65_000);
  integerIn(c, 'leavePropagateMs', 0, hour);
}
