/**
 * Which members this node keeps a libp2p connection to: a bounded, random, slowly rotating set
 * (pure: time and randomness injected, no I/O; the node runtime applies the plan).
 *
 * Before, every node dialled every member it heard of: N - 1 connections per node and
 * N(N - 1)/2 handshakes at cluster start, so a 120-node cluster did not form on two cores. Now a
 * node keeps `degree` peers chosen at random among the alive members, plus the members it must
 * keep (an agent its masters, a master the other masters). Others connect to it the same way,
 * and accept at most their own inbound limit (enforced by the shell), so connections per node
 * stay near 2 x degree whatever the cluster size. Gossipsub's mesh runs over these connections:
 * a random graph of degree ~2 x degree has a diameter of about log(N) / log(2 x degree - 1)
 * hops (3 at 1,000 nodes with degree 5); gossipsub relays over a mesh of degree 4 inside it,
 * so a delta takes about 5 hops to reach 1,000 nodes (see Libp2pNodeOptions.meshDegree).
 *
 * Why random and rotating: a random graph stays connected with overwhelming probability, and
 * replacing one peer every `rotateIntervalMs` keeps mixing it, so sets that all ended up on one
 * side of a partition reach across again after it heals (membership merges the two sides; the
 * rotation then crosses the old line), and no member stays everyone's peer for long.
 *
 * Peers that refused (inbound limit reached) or whose connection failed are avoided for
 * `retryBackoffMs`, so a full or unreachable member is not hammered.
 */
import type { Clock, Rng } from '../common/index.js';

export interface PeerSetOptions {
  /** Random peers to keep (must-keep members come on top). */
  degree: number;
  /** Time between replacing one random peer with another member, in ms; 0 never rotates. */
  rotateIntervalMs: number;
  /** Time a peer that refused or failed is not chosen again, in ms. */
  retryBackoffMs: number;
  clock: Clock;
  rng: Rng;
}

export interface PeerCandidate {
  /** Member name. */
  name: string;
  /** Kept whatever the degree (an agent's masters, a master's fellow masters). */
  mustKeep: boolean;
}

/** What the shell should change: open keeps to `add`, close them to `remove`. */
export interface PeerPlan {
  add: string[];
  remove: string[];
}

export interface PeerSetStats {
  /** Peers chosen (keeps asked for). */
  chosen: number;
  /** Peers dropped: gone from membership, rotated out, refused or lost. */
  dropped: number;
  /** Keeps refused by the remote (its inbound limit). */
  refused: number;
  /** Kept connections that failed or closed. */
  lost: number;
  rotations: number;
}

export class PeerSet {
  readonly stats: PeerSetStats = { chosen: 0, dropped: 0, refused: 0, lost: 0, rotations: 0 };
  /** Names kept (asked for or established), with whether they are must-keep. */
  private readonly kept = new Map<string, boolean>();
  private candidates = new Map<string, PeerCandidate>();
  private readonly avoidUntil = new Map<string, number>();
  private nextRotationAtMs: number;
  private nextMixAtMs = -Infinity;

  constructor(private readonly options: PeerSetOptions) {
    if (!Number.isInteger(options.degree) || options.degree < 1) throw new RangeError(`degree = ${options.degree}; expected a positive integer`);
    this.nextRotationAtMs = options.clock.nowMs() + this.rotationDelay();
  }

  /** Names currently kept. */
  get names(): string[] {
    return [...this.kept.keys()];
  }

  has(name: string): boolean {
    return this.kept.has(name);
  }

  /** The alive members (self excluded), replacing the previous list; returns the changes. */
  setCandidates(candidates: Iterable<PeerCandidate>): PeerPlan {
    return this.changes(() => {
      this.candidates = new Map([...candidates].map((c) => [c.name, c]));
    });
  }

  /** The remote refused the keep (its inbound limit): avoid it for a while and pick another. */
  refused(name: string): PeerPlan {
    this.stats.refused++;
    return this.changes(() => this.forget(name));
  }

  /** The kept connection failed or closed: avoid the peer for a while and pick another. */
  lost(name: string): PeerPlan {
    if (!this.kept.has(name)) return { add: [], remove: [] };
    this.stats.lost++;
    return this.changes(() => this.forget(name));
  }

  /** Time passes: rotation, and peers whose backoff ended become candidates again. */
  tick(): PeerPlan {
    return this.changes(() => {
      const now = this.options.clock.nowMs();
      if (this.options.rotateIntervalMs <= 0 || now < this.nextRotationAtMs) return;
      this.nextRotationAtMs = now + this.rotationDelay();
      this.swapOne();
    });
  }

  /**
   * Members came back (a healed partition, restarts): swap one random peer now rather than at
   * the next rotation, at most once per `retryBackoffMs`. After a partition heals every full
   * set still lies on its own side; swapping one peer for a random member gives each node about
   * a 50 % chance of an edge across at once, so gossip crosses the old line within seconds
   * instead of after a rotation interval.
   */
  mix(): PeerPlan {
    return this.changes(() => {
      const now = this.options.clock.nowMs();
      if (now < this.nextMixAtMs) return;
      this.nextMixAtMs = now + this.options.retryBackoffMs;
      this.swapOne();
    });
  }

  /** Replaces one random (not must-keep) peer with a random available member, if the set is full. */
  private swapOne(): void {
    this.refill();
    const random = [...this.kept].filter(([, must]) => !must).map(([name]) => name);
    const spare = this.available();
    if (random.length < this.options.degree || spare.length === 0) return;
    const out = this.options.rng.pick(random);
    const into = this.options.rng.pick(spare);
    this.kept.delete(out);
    this.kept.set(into, false);
    this.stats.rotations++;
    this.stats.dropped++;
    this.stats.chosen++;
  }

  /** Runs `mutate`, refills, and returns the difference in kept names. */
  private changes(mutate: () => void): PeerPlan {
    const before = new Set(this.kept.keys());
    mutate();
    this.refill();
    const after = new Set(this.kept.keys());
    return { add: [...after].filter((n) => !before.has(n)), remove: [...before].filter((n) => !after.has(n)) };
  }

  private forget(name: string): void {
    if (this.kept.delete(name)) this.stats.dropped++;
    // A must-keep member is asked again once its backoff ends, never replaced.
    this.avoidUntil.set(name, this.options.clock.nowMs() + this.options.retryBackoffMs);
  }

  /** Candidates that may be chosen now: not kept, not must-keep, not avoided. */
  private available(): string[] {
    const now = this.options.clock.nowMs();
    const out: string[] = [];
    for (const c of this.candidates.values()) {
      if (c.mustKeep || this.kept.has(c.name)) continue;
      const until = this.avoidUntil.get(c.name);
      if (until !== undefined) {
        if (until > now) continue;
        this.avoidUntil.delete(c.name);
      }
      out.push(c.name);
    }
    return out;
  }

  /** Drops peers that left membership, adds must-keep members, fills up to the degree at random. */
  private refill(): void {
    const now = this.options.clock.nowMs();
    for (const name of [...this.kept.keys()]) {
      const c = this.candidates.get(name);
      if (c === undefined) {
        this.kept.delete(name);
        this.stats.dropped++;
      } else this.kept.set(name, c.mustKeep);
    }
    for (const c of this.candidates.values()) {
      if (!c.mustKeep || this.kept.has(c.name) || (this.avoidUntil.get(c.name) ?? 0) > now) continue;
      this.kept.set(c.name, true);
      this.stats.chosen++;
    }
    let random = [...this.kept.values()].filter((must) => !must).length;
    const spare = this.options.rng.shuffle(this.available());
    while (random < this.options.degree && spare.length > 0) {
      this.kept.set(spare.pop() as string, false);
      this.stats.chosen++;
      random++;
    }
  }

  private rotationDelay(): number {
    const base = this.options.rotateIntervalMs;
    return base <= 0 ? Infinity : base + this.options.rng.int(Math.max(1, Math.floor(base / 2)));
  }
}
