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
import type { Clock, Rng, TimerHandle } from '../common/index.js';
import type { Logger } from '../log/index.js';
import type { Membership, MemberMeta, MemberRole } from '../membership/index.js';
import { PeerSet, type PeerCandidate, type PeerPlan, type PeerSetStats, type NodeNetwork } from '../net/index.js';

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

/** How often the plan is revisited (rotation, backoffs ending), in ms. */
const TICK_MS = 5000;

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

  constructor(private readonly options: PeerManagerOptions) {
    this.peerSet = new PeerSet({ degree: options.degree, rotateIntervalMs: options.rotateIntervalMs, retryBackoffMs: options.retryBackoffMs, clock: options.clock, rng: options.rng });
  }

  get stats(): PeerSetStats & { kept: number } {
    return { ...this.peerSet.stats, kept: this.peerSet.names.length };
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
  }

  /** libp2p addresses of the kept peers. */
  keptAddresses(): string[] {
    return this.peerSet.names.map((n) => this.addresses.get(n)).filter((a): a is string => a !== undefined);
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
      // Addresses of members that are no longer candidates (suspect, failed, left) are kept
      // until the plan released them: clearing them first left their keeps open.
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

  /** Alive members with a libp2p address, and those addresses. */
  private candidates(): { candidates: PeerCandidate[]; addresses: Map<string, string> } {
    const out: PeerCandidate[] = [];
    const addresses = new Map<string, string>();
    for (const m of this.options.membership.members()) {
      if (m.state !== 'alive' || m.name === this.options.name) continue;
      const meta = this.options.meta(m.meta);
      const address = meta?.addrs?.[0];
      if (address === undefined || !/\/p2p\/[^/]+$/.test(address)) continue;
      addresses.set(m.name, address);
      // An agent keeps the masters; a master keeps the other masters.
      out.push({ name: m.name, mustKeep: meta?.role === 'master' });
    }
    return { candidates: out, addresses };
  }

  private apply(plan: PeerPlan): void {
    for (const name of plan.remove) {
      const address = this.addresses.get(name);
      if (address !== undefined) this.options.libp2p.release(address);
    }
    for (const name of plan.add) {
      const address = this.addresses.get(name);
      if (address === undefined) continue;
      // Essential (never refused): an agent's or a master's keep of a master.
      const essential = this.isMaster(name);
      this.options.libp2p.keep(
        address,
        essential,
        () => {
          if (this.stopped) return;
          this.options.onLost?.(name);
          this.apply(this.peerSet.lost(name));
        },
        (result) => {
          if (this.stopped) return;
          if (result === 'kept') {
            this.options.onKept?.(name, address);
            return;
          }
          if (!this.peerSet.has(name)) {
            // Released while the keep was being asked: let it go.
            this.options.libp2p.release(address);
            return;
          }
          this.options.logger?.debug({ peer: name, result }, 'peer did not keep the connection; choosing another');
          this.apply(result === 'refused' ? this.peerSet.refused(name) : this.peerSet.lost(name));
        },
      );
    }
  }

  private isMaster(name: string): boolean {
    const m = this.options.membership.member(name);
    return m !== undefined && this.options.meta(m.meta)?.role === 'master';
  }
}
