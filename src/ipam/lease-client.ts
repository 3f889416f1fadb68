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
 */
import type { Clock, Rng, TimerHandle } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { RpcClient, type Address, type StreamTransport } from '../net/index.js';
import { RaftErrorCode } from '../raft/index.js';
import { IpamError, IpamErrorCode } from './errors.js';
import { encodeLeaseRequest, IPAM_PROTOCOL } from './master.js';
import { decodeResult, type Lease } from './state.js';

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
  logger?: Logger;
  onLease?: (lease: Lease) => void;
}

export interface LeaseClientStats {
  requests: number;
  redirects: number;
  failures: number;
  /** Leases refused by the allocator (exhaustion, configuration). */
  refusals: number;
}

export class LeaseClient {
  readonly stats: LeaseClientStats = { requests: 0, redirects: 0, failures: 0, refusals: 0 };
  private lease: Lease | undefined;
  private readonly rpc: RpcClient;
  private timer: TimerHandle | undefined;
  private inFlight = false;
  private redirectsInARow = 0;
  private delayMs: number;
  private stopped = false;
  private waitLoggedAtMs = -Infinity;
  /** The last refusal or failure, for status APIs. */
  lastError: IpamError | undefined;

  constructor(private readonly options: LeaseClientOptions) {
    this.rpc = new RpcClient(options.streams, options.clock, IPAM_PROTOCOL, options.requestTimeoutMs ?? 3000);
    this.delayMs = options.retryMinMs ?? 200;
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
    if (this.lease !== undefined) this.options.onLease?.(this.lease);
    this.request();
  }

  /** The configuration may have changed: request again if the lease lacks an enabled network. */
  recheck(): void {
    const wanted = this.options.wantedNetworks?.();
    if (wanted === undefined || this.lease === undefined) return;
    if (wanted.some((n) => this.lease?.networks[n] === undefined)) this.request();
  }

  /**
   * A master just became reachable (membership saw it join or return): if this agent is still
   * waiting for a lease, ask now instead of at the end of the current backoff. At start the
   * first request finds no master and backs off; without this the lease waited out that delay
   * after the join had already found the masters.
   */
  kick(): void {
    if (this.stopped || this.inFlight || this.lastError === undefined) return;
    this.delayMs = this.options.retryMinMs ?? 200;
    this.request();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.rpc.close();
  }

  private target(hint: string | undefined): MasterInfo | undefined {
    const masters = this.options.masters();
    if (hint !== undefined) {
      const hinted = masters.find((m) => m.name === hint);
      if (hinted !== undefined) return hinted;
    }
    const leaders = masters.filter((m) => m.leader).sort((a, b) => b.term - a.term);
    return leaders[0] ?? (masters.length === 0 ? undefined : this.options.rng.pick(masters));
  }

  private request(hint?: string): void {
    if (this.stopped || this.inFlight) return;
    this.timer?.cancel();
    const master = this.target(hint);
    if (master === undefined) {
      this.retry(new IpamError(IpamErrorCode.NoLeader, 'no master is known yet (membership has not found one)', {}));
      return;
    }
    this.inFlight = true;
    this.stats.requests++;
    this.rpc.request(master.address, encodeLeaseRequest('allocate', this.options.agent), (error, response) => {
      this.inFlight = false;
      if (this.stopped) return;
      if (error !== null) {
        this.stats.failures++;
        this.retry(new IpamError(IpamErrorCode.NoLeader, `master ${master.name} did not answer: ${error.message}`, { master: master.name }, { cause: error }));
        return;
      }
      let result;
      try {
        result = decodeResult(response as Uint8Array);
      } catch (err) {
        this.stats.failures++;
        this.retry(new IpamError(IpamErrorCode.Decode, `master ${master.name} sent a malformed answer: ${(err as Error).message}`, { master: master.name }));
        return;
      }
      if (result.ok) {
        this.redirectsInARow = 0;
        this.delayMs = this.options.retryMinMs ?? 200;
        this.lastError = undefined;
        const lease = result.value as Lease;
        const changed = JSON.stringify(lease) !== JSON.stringify(this.lease);
        this.lease = lease;
        if (changed) {
          this.options.store.save(lease);
          this.options.onLease?.(lease);
        }
        return;
      }
      const leader = result.error.details['leader'];
      // Follow a redirect at once, but only to a master we can address, and not in circles
      // (during an election followers may point at a leader that is gone).
      if (
        result.error.code === RaftErrorCode.NotLeader &&
        typeof leader === 'string' &&
        leader !== master.name &&
        this.redirectsInARow < 3 &&
        this.options.masters().some((m) => m.name === leader)
      ) {
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
      this.options.logger?.warn({ code: error.code }, `no lease yet: ${now}`);
    }
    const jitter = this.options.rng.int(Math.max(1, Math.floor(this.delayMs / 2)));
    this.options.logger?.debug({ err: error.message, retryInMs: this.delayMs + jitter }, 'lease request failed; retrying');
    this.timer = this.options.clock.setTimer(this.delayMs + jitter, () => this.request());
    this.delayMs = Math.min(this.options.retryMaxMs ?? 5000, this.delayMs * 2);
  }
}
