/**
 * The allocator on a master: a Raft member whose state machine is the allocation state, with
 * Raft messages and agents' lease requests carried by request/response RPC over any stream
 * transport (libp2p in the daemon, simulated streams in tests).
 *
 *   /lashup/raft/1    [senderId, raft message, 1?]  ->  empty | [senderId, raft message]
 *   /lashup/ipam/1    [op, agent]  ->  [ok, lease | error]   op 1 allocate, 3 usage, 4 lookup
 *
 * A Raft message that asks for an answer (a vote, an append) gets it in the response when the
 * request says it takes one there (the third element, 1): a leader's append and its follower's
 * acknowledgement are one request and its response instead of two requests and two empty
 * responses, and the answer needs no address of the asker (a master that joined late is not in
 * the others' membership yet). Without the flag (an older master) the response is empty and the
 * answer travels as a request of its own, as before. Measured at cold starts of 3 masters and 16
 * agents on 2 busy cores: an allocation took the leader 300-950 ms to commit.
 *
 * Op 4 (lookup) is a linearizable read of one agent's lease (null when it holds none): how a
 * running agent checks that its lease still holds. Op 2 (release) is not served over RPC: any
 * cluster member could release a live agent through it; releases go through a master's API,
 * which checks that membership no longer sees the agent (a past bug: releasing a live agent
 * handed its subnet and VTEP address to the next agent while the first still used them).
 *
 * An allocation asked of a follower is forwarded to the leader it knows (op 7, below) and the
 * leader's answer relayed; other requests to a follower, and allocations it cannot forward, are
 * answered with LASHUP_ERR_RAFT_NOT_LEADER and the leader's name; clients find its address in
 * membership metadata.
 *
 * Why forward: a starting agent is connected to the master it joined through long before its
 * own connection to the leader is up (traced in the e2e benchmark: the new process is busy
 * loading and starting, and its handshake with the leader took ~285 ms, its lease request
 * leaving 320 ms after the join), while the masters hold connections to each other for Raft.
 * A follower relays the request over that connection instead.
 *
 *   /lashup/ipam/1    [7, agent, agent peer id | null, forwarding master]   (master to leader)
 *
 * The agent's identity is the peer id the follower's noise handshake authenticated; the leader
 * takes op 7 only from a master whose identity it pinned (acceptSender) and never forwards it
 * again, so a request crosses at most one extra hop. When this master becomes leader and the
 * committed configuration differs from its own, it proposes its own (masters are configured
 * alike; the last leader's configuration wins, after validation).
 */
import { Packr, Unpackr } from 'msgpackr';
import { jsonEquals, type Clock, type Rng } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { RpcClient, RpcServer, type Address, type StreamTransport } from '../net/index.js';
import { decodeRaftMessage, encodeRaftMessage, type RaftError, RaftErrorCode, RaftNode, type RaftConfig, type RaftStorage, type Role } from '../raft/index.js';
import type { OverlayConfig } from './config.js';
import { decodeResult, encodeCommand, IpamState, type Lease } from './state.js';
import { IpamErrorCode } from './errors.js';

export const RAFT_PROTOCOL = '/lashup/raft/1';
export const IPAM_PROTOCOL = '/lashup/ipam/1';

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export interface AllocatorMasterOptions {
  name: string;
  /** Every master's name (the voters). */
  masters: readonly string[];
  /** This master's overlay configuration (validated before). */
  overlay: OverlayConfig;
  storage: RaftStorage;
  streams: StreamTransport;
  clock: Clock;
  rng: Rng;
  /** The stream address of a master by name (membership metadata), or undefined when unknown. */
  addressOf: (name: string) => Address | undefined;
  raft?: Partial<RaftConfig>;
  logger?: Logger;
  onStateChange?: (state: { role: Role; term: number; leader: string | undefined }) => void;
  /**
   * Pin each agent's identity (the peer id its lease request came from) in its allocation.
   * Default true; false only where stream addresses are not identities.
   */
  pinIdentities?: boolean;
  /**
   * Whether a Raft message claiming to come from master `name` may be taken from the stream
   * whose authenticated remote address is `from` (the daemon checks the master's pinned
   * identity). Absent: every sender is believed (the simulator's streams carry no identity).
   */
  acceptSender?: (name: string, from: string) => boolean;
  /**
   * An allocation this master granted (new or the agent's existing one), before the answer
   * goes back: the daemon announces it to the agents (keyspace/allocations.ts).
   */
  onGranted?: (lease: Lease) => void;
}

export interface AllocatorStats {
  raftMessagesSent: number;
  raftMessagesDropped: number;
  raftDecodeErrors: number;
  /** Raft messages dropped: they claimed a master's name from another identity. */
  raftSenderRefused: number;
  leaseRequests: number;
  leaseRedirects: number;
  /** Allocations refused because the request came from another identity than the agent's pinned one. */
  identityRefused: number;
  /** Allocations this follower forwarded to the leader. */
  leaseForwarded: number;
  /** Forwards that got no answer from the leader (the agent was told to ask it itself). */
  leaseForwardFailed: number;
  /** Forwarded allocations refused: not from a master this one knows (op 7 from another identity). */
  leaseForwardRefused: number;
  /** Allocation reads (the list, a peek) refused: this master had not caught up with the log. */
  allocationReadsRefused: number;
}

export class AllocatorMaster {
  readonly raft: RaftNode;
  readonly state = new IpamState();
  readonly stats: AllocatorStats = {
    raftMessagesSent: 0,
    raftMessagesDropped: 0,
    raftDecodeErrors: 0,
    raftSenderRefused: 0,
    leaseRequests: 0,
    leaseRedirects: 0,
    identityRefused: 0,
    leaseForwarded: 0,
    leaseForwardFailed: 0,
    leaseForwardRefused: 0,
    allocationReadsRefused: 0,
  };
  private readonly client: RpcClient;
  /** Forwarded allocations, to the leader. */
  private readonly leaseClient: RpcClient;
  private readonly raftServer: RpcServer;
  /** While a Raft message that takes its answer in the response is being taken: its asker and response. */
  private inline: { to: string; respond: (response: Uint8Array) => void } | undefined;
  /** The peer id each master's last accepted Raft message came from, and when (sendRaft's fallback). */
  private readonly raftPeers = new Map<string, { peer: string; atMs: number }>();
  private readonly ipamServer: RpcServer;
  private readonly options: AllocatorMasterOptions;

  constructor(options: AllocatorMasterOptions) {
    this.options = options;
    this.client = new RpcClient(options.streams, options.clock, RAFT_PROTOCOL, 2000);
    // Below the agents' own request timeout (3 s by default), so that an agent whose forward
    // found no leader still gets the redirect from this follower.
    this.leaseClient = new RpcClient(options.streams, options.clock, IPAM_PROTOCOL, FORWARD_TIMEOUT_MS);
    this.raft = new RaftNode({
      id: options.name,
      voters: options.masters,
      config: options.raft ?? {},
      storage: options.storage,
      stateMachine: {
        apply: (command) => this.state.apply(command),
        snapshot: () => this.state.snapshot(),
        restore: (data) => this.state.restore(data),
      },
      clock: options.clock,
      rng: options.rng,
      send: (to, message) => this.sendRaft(to, encodeRaftMessage(message)),
      onStateChange: (s) => {
        // Said at info: elections are rare, and when agents wait for leases the first question
        // is which master led and since when (a cold start's election was invisible in logs).
        options.logger?.info({ role: s.role, term: s.term, leader: s.leader ?? null }, 'raft role changed');
        if (s.role === 'leader') this.publishConfig();
        options.onStateChange?.(s);
      },
    });
    this.raftServer = new RpcServer(options.streams, RAFT_PROTOCOL, (request, from, respond) => {
      const envelope = unpackEnvelope(request);
      if (envelope === undefined) {
        respond(EMPTY);
        this.stats.raftDecodeErrors++;
        return;
      }
      const [sender, bytes, inline] = envelope;
      if (!inline) {
        respond(EMPTY);
        this.takeRaft(sender, bytes, from);
        return;
      }
      // The answer, if Raft sends one to the asker while it takes this message, goes into the
      // response (sendRaft); the response is empty otherwise.
      this.inline = { to: sender, respond };
      try {
        this.takeRaft(sender, bytes, from);
      } finally {
        if (this.inline !== undefined) respond(EMPTY);
        this.inline = undefined;
      }
    });
    this.ipamServer = new RpcServer(options.streams, IPAM_PROTOCOL, (request, from, respond, fail) => this.serveLease(request, from, respond, fail));
  }

  /** A Raft message from master `sender` (as it says), which arrived from peer `from`. */
  private takeRaft(sender: string, bytes: Uint8Array, from: string): void {
    const options = this.options;
    // Who sent it is checked before what it says is even decoded.
    if (options.acceptSender !== undefined && !options.acceptSender(sender, from)) {
      this.stats.raftSenderRefused++;
      this.logRefusal('raft', () =>
        options.logger?.warn(
          { code: 'LASHUP_ERR_RAFT_SENDER_REFUSED', sender, from, refused: this.stats.raftSenderRefused },
          "a Raft message claimed a master's name from an identity that is not that master's; dropped",
        ),
      );
      return;
    }
    let message;
    try {
      message = decodeRaftMessage(bytes);
    } catch {
      this.stats.raftDecodeErrors++;
      return;
    }
    if (options.masters.includes(sender)) this.raftPeers.set(sender, { peer: from, atMs: options.clock.nowMs() });
    this.raft.receive(sender, message);
  }

  start(): void {
    this.raft.start();
  }

  stop(): void {
    this.raft.stop();
    this.client.close();
    this.leaseClient.close();
    this.raftServer.close();
    this.ipamServer.close();
  }

  private sendRaft(to: string, bytes: Uint8Array): void {
    const inline = this.inline;
    if (inline !== undefined && inline.to === to) {
      // The answer to the message being taken: into its response (see the protocol above).
      this.inline = undefined;
      this.stats.raftMessagesSent++;
      inline.respond(packr.pack([this.options.name, bytes]).slice());
      return;
    }
    // Membership's address first; else the peer the master's last Raft message came from (its
    // connection is up: a stream opens on it). Past bug, traced at cold starts of 3 masters and
    // 16 agents: a master whose join came late was missing from the leader's membership for 4-5 s
    // after it had joined (news of it still queued behind 18 other joins), so the leader dropped
    // every append to it although that master's own messages were reaching the leader; it knew
    // no leader meanwhile and the agents that asked it waited. Only while its messages keep
    // coming: a master that stopped is not dialled at every heartbeat.
    const recent = this.raftPeers.get(to);
    const address = this.options.addressOf(to) ?? (recent !== undefined && this.options.clock.nowMs() - recent.atMs <= RAFT_PEER_FRESH_MS ? recent.peer : undefined);
    if (address === undefined) {
      this.stats.raftMessagesDropped++;
      return;
    }
    this.stats.raftMessagesSent++;
    // Raft retries by itself: a lost message is only a slower round.
    this.client.request(address, packr.pack([this.options.name, bytes, 1]).slice(), (error, response) => {
      if (error !== null) {
        this.stats.raftMessagesDropped++;
        return;
      }
      if (response === undefined || response.length === 0) return;
      // The answer came back on the stream this master opened to `to` (its authenticated peer):
      // one that names another master is dropped.
      const envelope = unpackEnvelope(response);
      let message;
      try {
        message = envelope === undefined || envelope[0] !== to ? undefined : decodeRaftMessage(envelope[1]);
      } catch {
        message = undefined;
      }
      if (message === undefined) {
        this.stats.raftDecodeErrors++;
        return;
      }
      this.raft.receive(to, message);
    });
  }

  private publishConfig(): void {
    const committed = this.state.config;
    if (committed !== undefined && jsonEquals(committed, this.options.overlay)) return;
    this.raft.propose(encodeCommand({ op: 'config', config: this.options.overlay }), (error, result) => {
      if (error !== null) return;
      const decoded = decodeResult(result as Uint8Array);
      if (!decoded.ok) this.options.logger?.error({ err: decoded.error }, "this master's overlay configuration was refused by the allocator; keeping the committed one");
    });
  }

  private allocationsCache: { index: number; bytes: Uint8Array } | undefined;
  private readonly lastRefusalLogMs: Record<string, number> = {};

  private granted(lease: Lease): void {
    try {
      this.options.onGranted?.(lease);
    } catch (err) {
      // The agent's lease stands: agents that miss the announcement ask the masters instead.
      this.options.logger?.warn({ agent: lease.agent, err: (err as Error).message }, 'the allocation could not be announced');
    }
  }

  /** Logs a refusal of kind `kind` at most every 10 s (a hostile peer could otherwise flood the log). */
  private logRefusal(kind: string, log: () => void): void {
    const now = this.options.clock.nowMs();
    if (now - (this.lastRefusalLogMs[kind] ?? -Infinity) < 10_000) return;
    this.lastRefusalLogMs[kind] = now;
    log();
  }

  /**
   * `from`: the stream's remote address, which for libp2p is the peer id its noise handshake
   * authenticated; an allocation pins it as the agent's identity (IpamState.allocate).
   */
  private serveLease(request: Uint8Array, from: string, respond: (response: Uint8Array) => void, fail: (message: string) => void): void {
    this.stats.leaseRequests++;
    let op: number;
    let agent: string;
    let raw: unknown[];
    try {
      raw = unpackr.unpack(request) as unknown[];
      if (!Array.isArray(raw) || typeof raw[0] !== 'number' || !isName(raw[1])) throw new Error('bad');
      op = raw[0];
      agent = raw[1];
    } catch {
      fail('a lease request is [op, agent]: op 1 allocate, 3 usage, 4 lookup, 5 allocations, 6 peek, 7 forwarded allocate');
      return;
    }
    // Allocations (op 1, and op 7 forwarded to the leader) are logged at debug with the time to
    // the answer and how it went: a cold start's agents waited out their 3 s request timeout at
    // some masters (e2e trace, 6 of 16 agents) and nothing told which step was slow.
    const startedMs = this.options.clock.nowMs();
    const reply =
      op === 1 || op === 7
        ? (response: Uint8Array): void => {
            this.options.logger?.debug({ op, agent, role: this.raft.role, elapsedMs: Math.round(this.options.clock.nowMs() - startedMs), answer: answerSummary(response) }, 'allocation answered');
            respond(response);
          }
        : respond;
    const answer = (error: RaftError | null, result?: Uint8Array): void => {
      if (error !== null) {
        if (error.code === RaftErrorCode.NotLeader) this.stats.leaseRedirects++;
        reply(packr.pack([false, { code: error.code, message: error.message, details: { ...error.details } }]).slice());
        return;
      }
      reply(result as Uint8Array);
    };
    if (op === 3) {
      // Usage is a read: linearizable through the read barrier.
      this.raft.read((error) => (error !== null ? answer(error) : reply(packr.pack([true, this.state.usage()]).slice())));
      return;
    }
    if (op === 4) {
      this.raft.read((error) => (error !== null ? answer(error) : reply(packr.pack([true, this.state.lease(agent) ?? null]).slice())));
      return;
    }
    if ((op === 5 || op === 6) && !this.raft.caughtUp) {
      // Answered from this master's state machine without a read barrier (below): a master that
      // has not caught up since it (re)started holds none of the allocations in its log yet, and
      // agents replace their whole copy with the list (they dropped every other agent's routes
      // when a restarted master answered an empty one, seen in a rolling restart of the masters).
      this.stats.allocationReadsRefused++;
      const leader = this.raft.leaderId;
      reply(
        packr
          .pack([
            false,
            {
              code: IpamErrorCode.NotCaughtUp,
              message: `master ${this.options.name} has not caught up with the allocator's log yet (applied up to ${this.raft.lastApplied}${this.raft.role === 'leader' || leader === undefined ? '' : `; the leader is ${leader}`}); ask again soon or ask another master`,
              details: leader === undefined || leader === this.options.name ? {} : { leader },
            },
          ])
          .slice(),
      );
      return;
    }
    if (op === 6) {
      // One agent's allocation as this master applied it (no read barrier, see op 5): how agents
      // learn a new agent's allocation when its entry appears, a few hundred bytes per ask.
      reply(packr.pack([true, this.state.lease(agent) ?? null]).slice());
      return;
    }
    if (op === 5) {
      // Every allocation this master has applied (any master answers, no read barrier: a few ms
      // stale at worst, and an agent that finds an allocation missing asks again), encoded once
      // per applied index. Agents check other agents' overlay entries against it; with a
      // thousand agents the list is ~100 KB, so neither a Raft round nor an encoding per ask.
      const applied = this.raft.lastApplied;
      if (this.allocationsCache?.index !== applied) this.allocationsCache = { index: applied, bytes: packr.pack([true, this.state.leases()]).slice() };
      reply(this.allocationsCache.bytes);
      return;
    }
    if (op === 2) {
      fail('release is not served over RPC; use POST /v1/allocations/{agent}/release on a master');
      return;
    }
    if (op === 7) {
      const peerId = raw[2];
      const forwarder = raw[3];
      if ((peerId !== null && !isName(peerId)) || !isName(forwarder)) {
        fail('a forwarded allocation is [7, agent, agent peer id or null, forwarding master]');
        return;
      }
      // Only a master may speak for an agent's identity: anyone else could pin their own peer id
      // on another agent's allocation through this op.
      if (!this.options.masters.includes(forwarder) || (this.options.acceptSender !== undefined && !this.options.acceptSender(forwarder, from))) {
        this.stats.leaseForwardRefused++;
        this.logRefusal('forward', () =>
          this.options.logger?.warn(
            { code: IpamErrorCode.ForwardRefused, agent, forwarder, from, refused: this.stats.leaseForwardRefused },
            'a forwarded allocation did not come from a master; refused',
          ),
        );
        reply(
          packr.pack([false, { code: IpamErrorCode.ForwardRefused, message: `forwarded allocations are taken from masters only; ${from} is not master ${forwarder}`, details: { forwarder } }]).slice(),
        );
        return;
      }
      this.allocate(agent, peerId ?? undefined, answer);
      return;
    }
    if (op !== 1) {
      fail(`unknown lease operation ${op}; valid: 1 allocate, 3 usage, 4 lookup, 5 allocations, 6 peek, 7 forwarded allocate`);
      return;
    }
    const peerId = this.options.pinIdentities === false ? undefined : from;
    if (this.forward(agent, peerId, reply)) return;
    this.allocate(agent, peerId, answer);
  }

  /**
   * Forwards an allocation to the leader when this master is a follower that knows one it can
   * address; relays the leader's answer as it is (a "not leader" from a master that lost the
   * leadership included: the agent follows it). Without an answer in FORWARD_TIMEOUT_MS, or
   * with an error (a leader of an older version that does not know op 7), the agent is told to
   * ask the leader itself, as before forwarding existed. False when there is nobody to forward to.
   */
  private forward(agent: string, peerId: string | undefined, respond: (response: Uint8Array) => void): boolean {
    const leader = this.raft.leaderId;
    if (this.raft.role === 'leader' || leader === undefined || leader === this.options.name) return false;
    const address = this.options.addressOf(leader);
    if (address === undefined) return false;
    this.stats.leaseForwarded++;
    this.leaseClient.request(address, packr.pack([7, agent, peerId ?? null, this.options.name]).slice(), (error, response) => {
      if (error === null && response !== undefined) {
        respond(response);
        return;
      }
      this.stats.leaseForwardFailed++;
      this.stats.leaseRedirects++;
      respond(
        packr.pack([false, { code: RaftErrorCode.NotLeader, message: `master ${this.options.name} could not reach leader ${leader}: ${error?.message ?? 'no answer'}`, details: { leader } }]).slice(),
      );
    });
    return true;
  }

  private allocate(agent: string, peerId: string | undefined, answer: (error: RaftError | null, result?: Uint8Array) => void): void {
    this.raft.propose(encodeCommand({ op: 'allocate', agent, ...(peerId === undefined ? {} : { peerId }) }), (error, result) => {
      if (error === null && result !== undefined) {
        const decoded = decodeResult(result);
        if (decoded.ok) this.granted(decoded.value as Lease);
        if (!decoded.ok && decoded.error.code === IpamErrorCode.IdentityMismatch) {
          this.stats.identityRefused++;
          this.logRefusal('identity', () => this.options.logger?.warn({ code: decoded.error.code, agent, presented: peerId, refused: this.stats.identityRefused }, decoded.error.message));
        }
      }
      answer(error, result);
    });
  }
}

const EMPTY = new Uint8Array(0);

/**
 * A /lashup/raft/1 message: [sender, raft message, 1?], the flag saying the sender takes the
 * answer in the response; undefined when it is not one.
 */
function unpackEnvelope(bytes: Uint8Array): [sender: string, message: Uint8Array, inline: boolean] | undefined {
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch {
    return undefined;
  }
  if (!Array.isArray(raw) || typeof raw[0] !== 'string' || !(raw[1] instanceof Uint8Array)) return undefined;
  return [raw[0], raw[1], raw[2] === 1];
}

const LEASE_OPS = { allocate: 1, usage: 3, lookup: 4, allocations: 5, peek: 6 } as const;

/** "granted", or the error code of a refusal, of an encoded answer (for the debug log). */
function answerSummary(response: Uint8Array): string {
  try {
    const decoded = unpackr.unpack(response) as unknown[];
    if (decoded[0] === true) return 'granted';
    const code = (decoded[1] as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? code : 'refused';
  } catch {
    return 'undecodable';
  }
}

/**
 * How long after a master's last Raft message its peer id stands in for the address membership
 * does not have, in ms: longer than the default election timeout (800-1,600 ms), the longest a
 * live master stays quiet (a follower answers every heartbeat; a candidate asks every timeout).
 */
const RAFT_PEER_FRESH_MS = 2000;

/** How long a follower waits for the leader's answer to a forwarded allocation, in ms. */
const FORWARD_TIMEOUT_MS = 2000;

/** A name or peer id from the wire: a non-empty string of at most 256 characters. */
function isName(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 256;
}

/** Encodes a lease request (agent side). */
export function encodeLeaseRequest(op: keyof typeof LEASE_OPS, agent: string): Uint8Array {
  return packr.pack([LEASE_OPS[op], agent]).slice();
}
