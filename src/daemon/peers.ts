/**
 * The node's bounded set of libp2p connections: membership supplies the candidates (alive
 * members with their libp2p address), the pure PeerSet decides which to keep, and this shell
 * asks libp2p to keep or release them. Gossipsub, anti-entropy and the masters' RPC run over
 * these connections; joins, syncs and repairs with anyone else use short-lived dials that the
 * libp2p node closes once idle.
 *
 * Must-keep members: an agent keeps every master (leases, lease confirmations), a master every
 * other master (Raft); these keeps are "essential" and a master never refuses them.
 */
import { Backoff, type Clock, type Rng, type TimerHandle } from '../common/index.js';
import type { Logger } from '../log/index.js';
import type { MemberInfo, Membership, MemberMeta, MemberRole } from '../membership/index.js';
import { PeerSet, type KeepResult, type PeerCandidate, type PeerPlan, type PeerSetStats, type NodeNetwork } from '../net/index.js';

export interface PeerManagerOptions {
  name: string;
  role: MemberRole;
  membership: Membership;
  libp2p: NodeNetwork;
  /** Decoded metadata of a member (cached by the node). */
  meta: (bytes: Uint8Array) => MemberMeta | undefined;
  clock: Clock;
  rng: Rng;
  /** Random peers kept besides must-keep ones. */
  degree: number;
  rotateIntervalMs: number;
  retryBackoffMs: number;
  /** A new kept connection is up (the node may repair with it). */
  onKept?: (name: string, address: string) => void;
  /**
   * A member came back from failed or left (not merely refuted a suspicion): it may hold
   * updates this node missed while apart, and may lie outside every kept set.
   */
  onReturned?: (name: string, address: string) => void;
  /** A kept connection closed without being released: the peer may be gone. */
  onLost?: (name: string) => void;
  logger?: Logger;
}

/**
 * The members this node may keep, with their libp2p addresses: alive members with an address,
 * and suspect members it keeps already. A suspicion is not a failure: it is refuted or becomes
 * one within the suspicion timeout, and on a busy node most are refuted. Dropping a kept peer at
 * its suspicion closed a working connection and dialled a replacement (a handshake on both
 * sides), whose peer was often suspected in turn: a 60-node cluster forming on two cores started
 * 924 suspicions, and its peer sets churned with them. Suspect members are not newly chosen.
 */
export function peerCandidates(
  members: Iterable<Pick<MemberInfo, 'name' | 'state' | 'meta'>>,
  self: string,
  meta: (bytes: Uint8Array) => MemberMeta | undefined,
  kept: (name: string) => boolean,
): { candidates: PeerCandidate[]; addresses: Map<string, string> } {
  const out: PeerCandidate[] = [];
  const addresses = new Map<string, string>();
  for (const m of members) {
    if (m.name === self || !(m.state === 'alive' || (m.state === 'suspect' && kept(m.name)))) continue;
    const decoded = meta(m.meta);
    const address = decoded?.addrs?.[0];
    if (address === undefined || !/\/p2p\/[^/]+$/.test(address)) continue;
    addresses.set(m.name, address);
    // An agent keeps the masters; a master keeps the other masters.
    out.push({ name: m.name, mustKeep: decoded?.role === 'master' });
  }
  return { candidates: out, addresses };
}

/**
 * Keeps asked at once, at most (each a dial and a handshake on both sides). Three: an agent's
 * masters go out together; on an idle node a keep takes tens of ms, so a full set of ~8 is
 * kept within a few handshake times.
 */
const MAX_KEEP_DIALS = 3;

/** How often the plan is revisited (rotation, backoffs ending), in ms. */
const TICK_MS = 5000;

/**
 * The pause before the next keep after failed keeps in a row, in ms: none after one failure (a
 * peer that died is replaced at once), then this doubled per further failure (jittered +-50 %),
 * up to KEEP_BACKOFF_MAX_MS (short: a healed partition or a restarted peer should not wait long
 * for its keeps). While keeps fail, one is asked at a time instead of
 * MAX_KEEP_DIALS. Why: a failed keep is almost always a handshake that timed out because this
 * node's process or its peer's was too busy to finish it, and replacing it at once added a
 * handshake to both exactly then. A 200-node formation on two cores ran that loop: 7,977 of
 * 9,433 keeps failed, each replaced at once, and the dials starved SWIM's probes into 36,000
 * suspicions. An answer (kept or refused) ends the pause: the path works again.
 */
const KEEP_BACKOFF_BASE_MS = 1000;
const KEEP_BACKOFF_MAX_MS = 8000;

export class PeerManager {
  readonly peerSet: PeerSet;
  private readonly addresses = new Map<string, string>();
  /** Members seen failed or left (not yet reaped): their return is news. */
  private readonly departed = new Set<string>();
  /** Members that returned since the last plan. */
  private readonly returned = new Set<string>();
  private timer: TimerHandle | undefined;
  private replanQueued = false;
  private stopped = false;
  /** Names chosen and waiting for a dial slot (masters first). */
  private readonly waiting: string[] = [];
  /** Names whose keep is being asked now. */
  private readonly asking = new Set<string>();
  private dialling = 0;
  /** Names whose keep was answered 'kept' and whose connection has not been lost or released. */
  private readonly established = new Set<string>();
  /** Keeps that failed in a row (no answer); an answer resets it. */
  private failuresInRow = 0;
  /** No keep is asked before this time (ms on the clock): the back-off after failures. */
  private holdUntilMs = 0;
  private holdTimer: TimerHandle | undefined;
  private readonly keepBackoff: Backoff;
  private backoffs = 0;

  constructor(private readonly options: PeerManagerOptions) {
    this.peerSet = new PeerSet({ degree: options.degree, rotateIntervalMs: options.rotateIntervalMs, retryBackoffMs: options.retryBackoffMs, clock: options.clock, rng: options.rng });
    this.keepBackoff = new Backoff({ initialMs: KEEP_BACKOFF_BASE_MS, maxMs: KEEP_BACKOFF_MAX_MS, spread: 1, rng: options.rng });
  }

  get stats(): PeerSetStats & { kept: number; established: number; keepBackoffs: number } {
    return { ...this.peerSet.stats, kept: this.peerSet.names.length, established: this.established.size, keepBackoffs: this.backoffs };
  }

  start(): void {
    this.options.membership.on((event) => {
      if (!('member' in event) || event.member.name === this.options.name) return;
      const name = event.member.name;
      if (event.type === 'failed' || event.type === 'left') this.departed.add(name);
      else if (event.type === 'reaped') this.departed.delete(name);
      else if (event.type === 'alive' && this.departed.delete(name)) this.returned.add(name);
      this.replanSoon();
    });
    const tick = (): void => {
      if (this.stopped) return;
      this.apply(this.peerSet.tick());
      this.timer = this.options.clock.setTimer(TICK_MS, tick);
    };
    this.timer = this.options.clock.setTimer(TICK_MS, tick);
    this.replanSoon();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.holdTimer?.cancel();
  }

  /**
   * libp2p addresses of the kept peers whose connection is up: a stream to them opens without a
   * dial. Rounds and syncs that ran with every chosen peer dialled those whose keep was still
   * being asked, joined that dial and failed with it (a 200-node formation: 4,111 anti-entropy
   * rounds failed to open their stream).
   */
  connectedAddresses(): string[] {
    return [...this.established]
      .filter((n) => this.peerSet.has(n))
      .map((n) => this.addresses.get(n))
      .filter((a): a is string => a !== undefined);
  }

  /** libp2p addresses of the kept peers, keeps asked or established. */
  keptAddresses(): string[] {
    return this.peerSet.names.map((n) => this.addresses.get(n)).filter((a): a is string => a !== undefined);
  }

  /**
   * Whom to run a round or sync with: kept peers whose connection is up, or while none is, the
   * kept ones still being asked (the round joins the keep's dial: a starting node must not wait
   * for its next 30 s round, nor dial a member outside its set).
   */
  roundAddresses(): string[] {
    const connected = this.connectedAddresses();
    return connected.length > 0 ? connected : this.keptAddresses();
  }

  /** Membership events come in bursts (a join brings the whole member list): plan once per burst. */
  private replanSoon(): void {
    if (this.replanQueued || this.stopped) return;
    this.replanQueued = true;
    this.options.clock.setTimer(0, () => {
      this.replanQueued = false;
      if (this.stopped) return;
      const { candidates, addresses } = this.candidates();
      for (const [name, address] of addresses) this.addresses.set(name, address);
      // Addresses of members that are no longer candidates (failed, left, suspect and not kept)
      // are kept until the plan released them: clearing them first left their keeps open.
      this.apply(this.peerSet.setCandidates(candidates));
      for (const name of [...this.addresses.keys()]) if (!addresses.has(name) && !this.peerSet.has(name)) this.addresses.delete(name);
      if (this.returned.size === 0) return;
      // Members came back from failed or left (a healed partition, restarts): mix the set so it
      // reaches across the old line, and tell the node (it repairs with some of them).
      this.apply(this.peerSet.mix());
      for (const name of this.returned) {
        const address = this.addresses.get(name);
        if (address !== undefined) this.options.onReturned?.(name, address);
      }
      this.returned.clear();
    });
  }

  private candidates(): { candidates: PeerCandidate[]; addresses: Map<string, string> } {
    return peerCandidates(this.options.membership.members(), this.options.name, this.options.meta, (name) => this.peerSet.has(name));
  }

  private apply(plan: PeerPlan): void {
    for (const name of plan.remove) {
      this.established.delete(name);
      const address = this.addresses.get(name);
      if (address !== undefined) this.options.libp2p.release(address);
    }
    // Masters first: an agent's leases and a master's Raft wait on them.
    const masters = plan.add.filter((name) => this.isMaster(name));
    this.waiting.unshift(...masters);
    this.waiting.push(...plan.add.filter((name) => !masters.includes(name)));
    this.pump();
  }

  /**
   * Starts waiting keeps while fewer than MAX_KEEP_DIALS are being asked. Each keep is a dial
   * and a handshake on both sides; unbounded, a busy node's keeps timed out, each failure chose a
   * replacement at once, and the replacements timed out in turn (a 200-node formation on two
   * cores: 27,369 dials, 13,234 keeps timed out, formation 274 s).
   */
  private pump(): void {
    if (this.stopped) return;
    const now = this.options.clock.nowMs();
    if (now < this.holdUntilMs) {
      this.holdTimer ??= this.options.clock.setTimer(this.holdUntilMs - now, () => {
        this.holdTimer = undefined;
        this.pump();
      });
      return;
    }
    const window = this.failuresInRow > 0 ? 1 : MAX_KEEP_DIALS;
    while (!this.stopped && this.dialling < window && this.waiting.length > 0) {
      const name = this.waiting.shift() as string;
      // Dropped from the set while it waited (a plan removed it, or it was asked already).
      if (!this.peerSet.has(name) || this.asking.has(name)) continue;
      const address = this.addresses.get(name);
      if (address === undefined) continue;
      this.ask(name, address);
    }
  }

  private ask(name: string, address: string): void {
    this.dialling++;
    this.asking.add(name);
    // Essential (never refused): an agent's or a master's keep of a master.
    const essential = this.isMaster(name);
    this.options.libp2p.keep(
      address,
      essential,
      () => {
        this.established.delete(name);
        if (this.stopped) return;
        this.options.onLost?.(name);
        this.apply(this.peerSet.lost(name));
      },
      (result) => {
        this.dialling--;
        this.asking.delete(name);
        if (this.stopped) return;
        this.backOff(result);
        if (!this.peerSet.has(name)) {
          // Released while the keep was being asked: let it go (a keep that succeeded after its
          // release was kept for good).
          this.options.libp2p.release(address);
        } else if (result === 'kept') {
          this.established.add(name);
          this.options.onKept?.(name, address);
        } else {
          this.options.logger?.debug({ peer: name, result }, 'peer did not keep the connection; choosing another');
          this.apply(result === 'refused' ? this.peerSet.refused(name) : this.peerSet.lost(name));
        }
        this.pump();
      },
    );
  }

  /** Counts failures in a row and sets the pause before the next keep (KEEP_BACKOFF_BASE_MS). */
  private backOff(result: KeepResult): void {
    if (result !== 'failed') {
      this.failuresInRow = 0;
      this.holdUntilMs = 0;
      this.keepBackoff.reset();
      return;
    }
    this.failuresInRow++;
    if (this.failuresInRow < 2) return;
    this.holdUntilMs = this.options.clock.nowMs() + this.keepBackoff.next();
    this.backoffs++;
  }

  private isMaster(name: string): boolean {
    const m = this.options.membership.member(name);
    return m !== undefined && this.options.meta(m.meta)?.role === 'master';
  }
}
