/**
 * Admission of inbound libp2p connections before they authenticate.
 *
 * An inbound TCP connection costs a slot from accept until the private-network and noise
 * handshakes finish. libp2p's defaults (10 such slots in all, 10 s to finish) let one host
 * that opens silent connections, and reopens them when they time out, keep every new member
 * out: twelve sockets from one address stopped a join for more than 50 s. This gate counts
 * unauthenticated connections per remote host and refuses a host's connection beyond
 * `perHostPending` of them, and any stranger's beyond `strangerPending` in all. Hosts that
 * membership knows (members' underlay and libp2p addresses) are not held to those two limits:
 * a member reconnecting after a partition must not wait behind strangers. Everyone together is
 * held to `totalPending` (above `strangerPending`, so strangers can never take every slot):
 * a cluster starting at once sends every join to its seeds, and a seed that took them all at
 * once spent more than the 5 s handshake limit on them and timed them all out; refused at once,
 * a joiner retries a moment later.
 *
 * Pure bookkeeping (no I/O): the libp2p node calls `admit` when a connection arrives and
 * `settle` once it authenticated or closed, whichever comes first.
 */

export interface InboundGateOptions {
  /** Unauthenticated connections one non-member host may hold. */
  perHostPending: number;
  /** Unauthenticated connections all non-member hosts together may hold. */
  strangerPending: number;
  /** Unauthenticated connections everyone together may hold (above strangerPending). */
  totalPending: number;
  /** Whether a remote host (IP text) belongs to a known member. */
  isMemberHost: (host: string) => boolean;
  /**
   * Age after which an unsettled ticket is reclaimed, in ms: longer than libp2p's own limit on
   * an inbound upgrade, so a connection still handshaking is never counted out. A backstop for
   * connections that ended without the close event reaching the gate.
   */
  maxPendingMs: number;
  /** Monotonic time, ms. */
  nowMs: () => number;
}

export interface InboundGateStats {
  /** Connections admitted before authentication. */
  admitted: number;
  /** Connections refused: their host already held perHostPending unauthenticated ones. */
  refusedPerHost: number;
  /** Connections refused: strangers already held strangerPending unauthenticated ones. */
  refusedStrangers: number;
  /** Connections refused: totalPending unauthenticated ones were in progress. */
  refusedBusy: number;
  /** Unauthenticated connections now (a gauge). */
  pending: number;
  /** Tickets reclaimed after maxPendingMs without being settled (each one a missed close). */
  expired: number;
}

/** A connection admitted by the gate; settle it exactly once. */
export interface GateTicket {
  readonly host: string;
  readonly member: boolean;
  readonly admittedAtMs: number;
  settled: boolean;
}

export class InboundGate {
  readonly stats: InboundGateStats = { admitted: 0, refusedPerHost: 0, refusedStrangers: 0, refusedBusy: 0, pending: 0, expired: 0 };
  private readonly perHost = new Map<string, number>();
  /** Unsettled tickets (at most totalPending). */
  private readonly open = new Set<GateTicket>();
  private strangers = 0;

  constructor(private readonly options: InboundGateOptions) {}

  /** A ticket when the connection may proceed to its handshake; undefined when it is refused. */
  admit(host: string): GateTicket | undefined {
    this.reclaimExpired();
    if (this.stats.pending >= this.options.totalPending) {
      this.stats.refusedBusy++;
      return undefined;
    }
    const member = this.options.isMemberHost(host);
    if (!member) {
      if ((this.perHost.get(host) ?? 0) >= this.options.perHostPending) {
        this.stats.refusedPerHost++;
        return undefined;
      }
      if (this.strangers >= this.options.strangerPending) {
        this.stats.refusedStrangers++;
        return undefined;
      }
      this.strangers++;
    }
    this.perHost.set(host, (this.perHost.get(host) ?? 0) + 1);
    this.stats.admitted++;
    this.stats.pending++;
    const ticket: GateTicket = { host, member, admittedAtMs: this.options.nowMs(), settled: false };
    this.open.add(ticket);
    return ticket;
  }

  /** The connection authenticated, failed or closed: its slot is free. Idempotent. */
  settle(ticket: GateTicket): void {
    if (ticket.settled) return;
    ticket.settled = true;
    this.open.delete(ticket);
    const left = (this.perHost.get(ticket.host) ?? 1) - 1;
    if (left <= 0) this.perHost.delete(ticket.host);
    else this.perHost.set(ticket.host, left);
    if (!ticket.member) this.strangers--;
    this.stats.pending--;
  }

  /**
   * Settles tickets older than maxPendingMs. Slots that were never given back kept members out
   * for good: in a 3-master, 32-agent cluster the masters' stranger slots filled up during
   * formation, and every agent started later never joined (no lease after 30 s, every time).
   */
  private reclaimExpired(): void {
    const oldest = this.options.nowMs() - this.options.maxPendingMs;
    for (const ticket of this.open) {
      if (ticket.admittedAtMs > oldest) continue;
      this.stats.expired++;
      this.settle(ticket);
    }
  }
}
