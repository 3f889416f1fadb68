/**
 * The agent's side of allocation: get this agent's lease from the masters' leader, keep it on
 * disk, and reuse it after a restart even when no master answers (an agent must come back with
 * the same subnet and VTEP, so its peers' kernel entries stay valid).
 *
 * The leader is found in membership metadata (masters publish their Raft role and term); a
 * master that is not leader answers with the leader's name, which is followed at once. Failures
 * are retried with exponential backoff and jitter. The lease is checked against the current
 * overlay configuration: a network that the configuration enables but the lease lacks triggers
 * a new request (allocation is idempotent: what the agent holds does not change).
 *
 * A held lease is confirmed with the masters every `checkIntervalMs` (and when asked, e.g. when
 * the agent's own overlay entry disappears) by a read-only lookup. When the masters no longer
 * hold it - an operator released this agent while it ran - the agent says so loudly, stops
 * using it (`onLeaseLost`) and requests a new one: before, it kept its released subnet and VTEP
 * address forever while the next agent received the same ones.
 */
import { Backoff, jsonEquals, type Clock, type Rng, type TimerHandle } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { RpcClient, type Address, type StreamTransport } from '../net/index.js';
import { RaftErrorCode } from '../raft/index.js';
import { IpamError, IpamErrorCode } from './errors.js';
import { encodeLeaseRequest, IPAM_PROTOCOL } from './master.js';
import { decodeResult, type IpamResult, type Lease } from './state.js';

export interface LeaseStore {
  load(): Lease | undefined;
  save(lease: Lease): void;
}

export interface MasterInfo {
  name: string;
  address: Address;
  /** What its metadata says: leader of `term`, or not. */
  leader: boolean;
  term: number;
}

/**
 * After start, how long not knowing any master is an expected state (the join has not been
 * answered yet) and is logged at info rather than as a warning, ms.
 */
const START_QUIET_MS = 10_000;

export interface LeaseClientOptions {
  agent: string;
  streams: StreamTransport;
  clock: Clock;
  rng: Rng;
  /** The masters membership knows (alive), with their published Raft role. */
  masters: () => MasterInfo[];
  store: LeaseStore;
  /** Networks the current overlay configuration enables (undefined: not known yet). */
  wantedNetworks?: () => readonly string[] | undefined;
  /** First retry delay, ms (doubles to retryMaxMs). Default 200. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Time limit of one request, ms. Default 3,000. */
  requestTimeoutMs?: number;
  /**
   * Whether this node has a connection up to `master` (a stream to it needs no dial). A lease
   * request goes to the leader when connected to it, else to a connected master, which forwards
   * it to the leader (AllocatorMaster), else to the leader over a new connection. Absent: always
   * the leader.
   */
  connected?: (master: MasterInfo) => boolean;
  /**
   * Interval between confirmations of a held lease, in ms (jittered by up to a fifth). Default
   * 30,000: a lookup is a Raft read, not a log entry, so a thousand agents cost ~33 reads/s.
   */
  checkIntervalMs?: number;
  logger?: Logger;
  /** A new or changed lease (also the stored one at start). */
  onLease?: (lease: Lease) => void;
  /** The masters confirmed the lease held (unchanged). */
  onConfirmed?: (lease: Lease) => void;
  /** The masters no longer hold this agent's lease: stop advertising it. A new request follows. */
  onLeaseLost?: (lease: Lease) => void;
}

/**
 * Whether a membership event about another member is news a waiting lease client acts on at
 * once (`kick`): a master joined or came back, or a master's metadata now says it leads. The
 * last one matters at a cold start: the agents' retries grow to seconds apart while the masters
 * elect, and without it they waited out that backoff with the leader known (traced: 1.5-3.8 s).
 */
export function isLeaseNews(eventType: string, meta: { role?: string; raft?: { role: string } } | undefined): boolean {
  if (meta?.role !== 'master') return false;
  return eventType === 'join' || eventType === 'alive' || (eventType === 'update' && meta.raft?.role === 'leader');
}

/** The masters whose membership metadata says they lead, the latest term first. */
function publishedLeaders(masters: readonly MasterInfo[]): MasterInfo[] {
  return masters.filter((m) => m.leader).sort((a, b) => b.term - a.term);
}

export interface LeaseClientStats {
  requests: number;
  redirects: number;
  failures: number;
  /** Leases refused by the allocator (exhaustion, configuration). */
  refusals: number;
  /** Confirmations asked of the masters. */
  confirms: number;
  /** Leases the masters no longer held (released while this agent ran). */
  lost: number;
}

export class LeaseClient {
  readonly stats: LeaseClientStats = { requests: 0, redirects: 0, failures: 0, refusals: 0, confirms: 0, lost: 0 };
  private lease: Lease | undefined;
  private readonly rpc: RpcClient;
  private timer: TimerHandle | undefined;
  private checkTimer: TimerHandle | undefined;
  private inFlight = false;
  /** A kick's request is scheduled (see kick). */
  private kickPending = false;
  private redirectsInARow = 0;
  private readonly backoff: Backoff;
  private stopped = false;
  private waitLoggedAtMs = -Infinity;
  /** When start() ran (ms on the clock): the first START_QUIET_MS of not knowing a master are expected. */
  private startedAtMs = 0;
  /** The last refusal or failure, for status APIs. */
  lastError: IpamError | undefined;

  constructor(private readonly options: LeaseClientOptions) {
    this.rpc = new RpcClient(options.streams, options.clock, IPAM_PROTOCOL, options.requestTimeoutMs ?? 3000);
    // Spread: agents that start together and find no quorum together must not retry together.
    this.backoff = new Backoff({ initialMs: options.retryMinMs ?? 200, maxMs: options.retryMaxMs ?? 5000, spread: 0.5, rng: options.rng });
    try {
      this.lease = options.store.load();
    } catch (err) {
      options.logger?.warn({ err: (err as Error).message }, 'the stored lease is unreadable; requesting a new one');
    }
  }

  /** The lease held (possibly from disk, not yet confirmed by a master). */
  get current(): Lease | undefined {
    return this.lease;
  }

  /** Uses the stored lease at once if it suits the configuration, and confirms it with the masters. */
  start(): void {
    this.startedAtMs = this.options.clock.nowMs();
    if (this.lease !== undefined) this.options.onLease?.(this.lease);
    this.request();
    this.scheduleCheck();
  }

  private scheduleCheck(): void {
    if (this.stopped) return;
    const interval = this.options.checkIntervalMs ?? 30_000;
    this.checkTimer = this.options.clock.setTimer(interval + this.options.rng.int(Math.max(1, Math.floor(interval / 5))), () => {
      this.confirm();
      this.scheduleCheck();
    });
  }

  /**
   * Asks the masters (read-only) whether this agent's lease still holds. Confirmed: onConfirmed.
   * Gone: onLeaseLost, then a new request. No answer: nothing changes (a master without quorum
   * cannot hand the lease to anyone else either); the next check asks again.
   */
  confirm(hint?: string): void {
    const held = this.lease;
    if (this.stopped || this.inFlight || held === undefined || this.lastError !== undefined) return;
    const master = this.target(hint);
    if (master === undefined) return;
    this.stats.confirms++;
    this.ask(master, 'lookup', (failure, result) => {
      if (this.stopped || this.lease !== held) return;
      if (result === undefined) {
        this.options.logger?.debug({ master: master.name, err: failure?.message }, 'lease confirmation failed; asking again later');
        return;
      }
      if (!result.ok) {
        const leader = result.error.details['leader'];
        if (result.error.code === RaftErrorCode.NotLeader && typeof leader === 'string' && leader !== master.name && hint === undefined) this.confirm(leader);
        return;
      }
      const current = result.value as Lease | null;
      if (current === null) return this.lost(held);
      if (jsonEquals(current, held)) {
        this.options.onConfirmed?.(held);
        return;
      }
      // The masters hold something else for this agent (a new network, or another lease after a
      // release and a re-request raced): theirs is the truth.
      this.options.logger?.warn({ held: held.vtepIp, masters: current.vtepIp }, 'the masters hold a different lease for this agent; taking theirs');
      this.lease = current;
      this.options.store.save(current);
      this.options.onLease?.(current);
    });
  }

  private lost(held: Lease): void {
    this.stats.lost++;
    this.lease = undefined;
    this.options.logger?.error(
      { vtepIp: held.vtepIp, subnets: Object.fromEntries(Object.entries(held.networks).map(([n, l]) => [n, l.subnet ?? l.subnet6])) },
      "LEASE LOST: the masters no longer hold this agent's subnet and VTEP address (released while it ran?); it stops advertising them and requests a new lease. Containers with addresses from the old subnets must be restarted",
    );
    this.options.onLeaseLost?.(held);
    this.backoff.reset();
    this.request();
  }

  /** The configuration may have changed: request again if the lease lacks an enabled network. */
  recheck(): void {
    const wanted = this.options.wantedNetworks?.();
    if (wanted === undefined || this.lease === undefined) return;
    if (wanted.some((n) => this.lease?.networks[n] === undefined)) this.request();
  }

  /**
   * A master just became reachable (membership saw it join or return) or announced that it
   * leads: if this agent is still waiting for a lease, ask now instead of at the end of the
   * current backoff. At start the first request finds no master and backs off; without this the
   * lease waited out that delay after the join had already found the masters, or the leader had
   * been elected.
   *
   * The request goes out from a zero-delay timer, not from here: membership reports the members
   * one sync taught one by one, and the first master reported is often not the leader. Asked
   * at the first report, that master answered "not leader" and the agent paid a redirect over
   * a new connection (traced in the e2e benchmark: 150-330 ms in 4 of 10 joins) although the
   * same sync named the leader a moment later. Kicks in one batch make one request.
   */
  kick(): void {
    if (this.stopped || this.inFlight || this.lastError === undefined || this.kickPending) return;
    this.kickPending = true;
    this.backoff.reset();
    this.timer?.cancel();
    this.timer = this.options.clock.setTimer(0, () => {
      this.kickPending = false;
      this.request();
    });
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.checkTimer?.cancel();
    this.rpc.close();
  }

  /**
   * Every allocation a master has applied, for checking other agents' overlay entries; undefined
   * when no master answered. Asked of a random master (any answers; the load spreads), and
   * independent of the lease requests (their one-at-a-time rule does not apply).
   */
  fetchAllocations(callback: (leases: Lease[] | undefined, error?: string) => void): void {
    const masters = this.options.masters();
    this.read(masters.length === 0 ? undefined : this.options.rng.pick(masters), 'allocations', this.options.agent, (error, value) => {
      if (error !== undefined) callback(undefined, error);
      else if (!Array.isArray(value)) callback(undefined, 'a master sent no list of allocations');
      else callback(value as Lease[]);
    });
  }

  /**
   * One agent's allocation as a master applied it (null: none), for an overlay entry of an agent
   * not known yet; undefined when no master answered. Asked of the leader when one is known: it
   * applied the allocation before granting it, where a follower may still lag by a heartbeat.
   */
  peekAllocation(agent: string, callback: (lease: Lease | null | undefined, error?: string) => void): void {
    this.read(this.target(undefined), 'peek', agent, (error, value) => {
      if (error !== undefined) callback(undefined, error);
      else callback((value ?? null) as Lease | null);
    });
  }

  /**
   * A read of `master` that does not take part in the lease requests' one-at-a-time rule: the
   * answer's value, or the reason it has none (no master, no answer, malformed, refused).
   */
  private read(master: MasterInfo | undefined, op: 'allocations' | 'peek', agent: string, callback: (error: string | undefined, value?: unknown) => void): void {
    if (this.stopped || master === undefined) {
      callback('no master is known');
      return;
    }
    this.rpc.request(master.address, encodeLeaseRequest(op, agent), (error, response) => {
      if (error !== null) {
        callback(`master ${master.name} did not answer: ${error.message}`);
        return;
      }
      let result: IpamResult;
      try {
        result = decodeResult(response as Uint8Array);
      } catch (err) {
        callback(`master ${master.name} sent a malformed answer: ${(err as Error).message}`);
        return;
      }
      if (!result.ok) callback(`master ${master.name}: ${result.error.message}`);
      else callback(undefined, result.value);
    });
  }

  /**
   * One request to a master, one at a time (`inFlight`): the decoded result, or the failure (no
   * answer, or an answer that does not decode) as an IpamError, counted.
   */
  private ask(master: MasterInfo, op: 'allocate' | 'lookup', done: (failure: IpamError | undefined, result?: IpamResult) => void): void {
    this.inFlight = true;
    this.rpc.request(master.address, encodeLeaseRequest(op, this.options.agent), (error, response) => {
      this.inFlight = false;
      if (error !== null) {
        this.stats.failures++;
        done(new IpamError(IpamErrorCode.NoLeader, `master ${master.name} did not answer: ${error.message}`, { master: master.name }, { cause: error }));
        return;
      }
      let result: IpamResult;
      try {
        result = decodeResult(response as Uint8Array);
      } catch (err) {
        this.stats.failures++;
        done(new IpamError(IpamErrorCode.Decode, `master ${master.name} sent a malformed answer: ${(err as Error).message}`, { master: master.name }));
        return;
      }
      done(undefined, result);
    });
  }

  private target(hint: string | undefined): MasterInfo | undefined {
    const masters = this.options.masters();
    if (hint !== undefined) {
      const hinted = masters.find((m) => m.name === hint);
      if (hinted !== undefined) return hinted;
    }
    return publishedLeaders(masters)[0] ?? (masters.length === 0 ? undefined : this.options.rng.pick(masters));
  }

  /**
   * Where an allocation goes: the leader if a connection to it is up; else a master this agent
   * is connected to (it forwards to the leader over the masters' own connection); else the
   * leader. A starting agent is connected to the master it joined through well before its dial
   * to the leader finishes: traced in the e2e benchmark, the request waited ~285 ms for that
   * handshake while the new process was busy starting. Redirects (`hint`) go where they point.
   */
  private allocationTarget(hint: string | undefined): MasterInfo | undefined {
    const leader = this.target(hint);
    const connected = this.options.connected;
    if (hint !== undefined || connected === undefined || leader === undefined || connected(leader)) return leader;
    const near = this.options.masters().filter((m) => connected(m));
    return near.length === 0 ? leader : this.options.rng.pick(near);
  }

  private request(hint?: string): void {
    if (this.stopped || this.inFlight) return;
    // Whatever was scheduled (a retry, a kick's request) is this request.
    this.timer?.cancel();
    this.kickPending = false;
    const master = this.allocationTarget(hint);
    if (master === undefined) {
      this.retry(new IpamError(IpamErrorCode.NoLeader, 'no master is known yet (membership has not found one)', {}));
      return;
    }
    this.stats.requests++;
    this.ask(master, 'allocate', (failure, result) => {
      if (this.stopped) return;
      if (result === undefined) {
        this.retry(failure as IpamError);
        return;
      }
      if (result.ok) {
        this.redirectsInARow = 0;
        this.backoff.reset();
        this.lastError = undefined;
        const lease = result.value as Lease;
        const changed = !jsonEquals(lease, this.lease);
        this.lease = lease;
        if (changed) {
          this.options.store.save(lease);
          this.options.onLease?.(lease);
        }
        return;
      }
      const named = result.error.details['leader'];
      // A follower that has not heard from a leader yet answers without a name. Membership may
      // name one already (the leader publishes its role): ask it directly. Past bug, traced in
      // a cold start of 3 masters and 16 agents: a master whose own join came late knew no
      // leader for 7 s while the others had elected one; the agents connected to it (the seed
      // they joined through) asked it again and again, backing off to 4 s, and got their leases
      // 5-9 s after the election.
      const leader = typeof named === 'string' ? named : publishedLeaders(this.options.masters()).find((m) => m.name !== master.name)?.name;
      // Follow a redirect at once, but only to a master we can address, and not in circles
      // (during an election followers may point at a leader that is gone).
      if (result.error.code === RaftErrorCode.NotLeader && leader !== undefined && leader !== master.name && this.redirectsInARow < 3 && this.options.masters().some((m) => m.name === leader)) {
        this.stats.redirects++;
        this.redirectsInARow++;
        this.request(leader);
        return;
      }
      this.redirectsInARow = 0;
      if (result.error.code !== RaftErrorCode.NotLeader && result.error.code !== RaftErrorCode.LeadershipLost) this.stats.refusals++;
      this.retry(new IpamError(result.error.code as IpamErrorCode, result.error.message, result.error.details));
    });
  }

  /**
   * Why this agent has no lease yet, in words for operators (undefined once it has one): most
   * often a minority partition, where the reachable masters cannot form a quorum.
   */
  waitingFor(): string | undefined {
    if (this.lease !== undefined || this.lastError === undefined) return undefined;
    const code = this.lastError.code as string;
    const reachable = this.options.masters().map((m) => m.name);
    if (code === IpamErrorCode.NoLeader || code === RaftErrorCode.NotLeader || code === RaftErrorCode.LeadershipLost) {
      return `waiting for a quorum of masters to elect a leader (reachable masters: ${reachable.length === 0 ? 'none' : reachable.join(', ')}; a leader needs a majority of the masters in the configuration): ${this.lastError.message}`;
    }
    return `the allocator refused the lease: ${this.lastError.message} (${code})`;
  }

  private retry(error: IpamError): void {
    const before = this.waitingFor();
    this.lastError = error;
    const now = this.waitingFor();
    // Said when the situation changes, then every 30 s, not per retry: a minority partition can last hours.
    const nowMs = this.options.clock.nowMs();
    if (now !== undefined && (now.split(':')[0] !== before?.split(':')[0] || nowMs - this.waitLoggedAtMs >= 30_000)) {
      this.waitLoggedAtMs = nowMs;
      // A starting agent knows no master until its join is answered (a few hundred ms on a LAN):
      // that is said at info, not as a warning every agent logged at every start. Still so at
      // the next report (30 s on), it is a warning.
      const starting = error.code === IpamErrorCode.NoLeader && this.options.masters().length === 0 && nowMs - this.startedAtMs < START_QUIET_MS;
      if (starting) this.options.logger?.info({ code: error.code }, `no lease yet: ${now}`);
      else this.options.logger?.warn({ code: error.code }, `no lease yet: ${now}`);
    }
    const delayMs = this.backoff.next();
    this.options.logger?.debug({ err: error.message, retryInMs: delayMs }, 'lease request failed; retrying');
    this.timer = this.options.clock.setTimer(delayMs, () => this.request());
  }
}
