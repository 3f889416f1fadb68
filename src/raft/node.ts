/**
 * Raft (Ongaro and Ousterhout, "In Search of an Understandable Consensus Algorithm", and
 * Ongaro's thesis), as one member's state machine: time from the injected Clock, randomness from
 * the Rng, messages out through `send`, durability through a synchronous `RaftStorage`.
 *
 * - Elections with randomized timeouts and pre-vote (thesis 9.6): a member first asks whether
 *   it could win without raising any term, so one returning from a partition does not depose a
 *   healthy leader. Members that heard from a leader within the minimum election timeout ignore
 *   vote and pre-vote requests altogether (thesis 4.2.3).
 * - Log replication with the consistency check, fast back-off on conflicts, commitment of
 *   entries of the current term by majority, and a no-op at the start of each term.
 * - Snapshots: the state machine is snapshotted every `snapshotEveryEntries` applied entries;
 *   followers too far behind receive the snapshot.
 * - Linearizable reads by read index (thesis 6.4): the leader confirms it is still leader with a
 *   heartbeat round, then answers once its state machine has applied its commit index.
 * - A leader that has not heard from a majority for an election timeout steps down, so a
 *   partitioned leader stops answering reads and proposals instead of serving stale state.
 *
 * Safety rests on: term and vote durable before any vote is sent; log entries durable before
 * they are acknowledged (followers) or counted (leader).
 */
import type { Clock, Rng, TimerHandle } from '../common/index.js';
import { RaftError, RaftErrorCode } from './errors.js';
import type { LogEntry, NodeId, RaftMessage, RaftStorage, Role, Snapshot, StateMachine } from './types.js';

export interface RaftConfig {
  /**
   * Election timeouts are drawn uniformly from [min, max] ms. Longer tolerates slower networks
   * and pauses; shorter fails over faster. Default 800-1600: a failover in 1-2 s on a LAN.
   */
  electionTimeoutMinMs: number;
  electionTimeoutMaxMs: number;
  /**
   * Leader heartbeat (and replication retry) interval, ms. Default 250. Besides followers'
   * election timers only a lost request's retry waits for it: a proposal is replicated at once,
   * a new commit index is sent at once and a read sends its own round, so the interval mostly
   * sets how long a leader may stall (election timeout minimum less this: 550 ms by default)
   * before followers start an election. At 100 (the earlier default) the heartbeats, each an
   * RPC request and its ack, were about a third of an idle master's CPU: 3 masters + 4 agents
   * in namespaces idled at 227 ms/s of CPU with 100 and 185 ms/s with 250 (5 alternating runs
   * each).
   */
  heartbeatIntervalMs: number;
  /** Most entries per append message. Default 256. */
  maxEntriesPerAppend: number;
  /** Snapshot the state machine every this many applied entries. Default 1,024. */
  snapshotEveryEntries: number;
}

export const DEFAULT_RAFT_CONFIG: Readonly<RaftConfig> = {
  electionTimeoutMinMs: 800,
  electionTimeoutMaxMs: 1600,
  heartbeatIntervalMs: 250,
  maxEntriesPerAppend: 256,
  snapshotEveryEntries: 1024,
};

export interface RaftNodeOptions {
  id: NodeId;
  /** Every voter, this one included (a static set from the configuration). */
  voters: readonly NodeId[];
  config?: Partial<RaftConfig>;
  storage: RaftStorage;
  stateMachine: StateMachine;
  clock: Clock;
  rng: Rng;
  send(to: NodeId, message: RaftMessage): void;
  /** Called on every role, term or leader change (metadata for clients: who leads). */
  onStateChange?(state: { role: Role; term: number; leader: NodeId | undefined }): void;
}

export type ProposeCallback = (error: RaftError | null, result?: Uint8Array, index?: number) => void;

interface Peer {
  nextIndex: number;
  matchIndex: number;
  /** Highest heartbeat sequence this peer acknowledged in the current term. */
  ackedSeq: number;
  lastHeardMs: number;
  /** An append or snapshot is in flight (one at a time; retried at the next heartbeat). */
  inFlight: boolean;
  inFlightSince: number;
  /** The commit index the last append to this peer carried. */
  sentCommit: number;
}

interface PendingRead {
  readIndex: number;
  seq: number;
  callback: (error: RaftError | null) => void;
}

export class RaftNode {
  readonly id: NodeId;
  readonly config: RaftConfig;
  private readonly voters: readonly NodeId[];
  private readonly storage: RaftStorage;
  private readonly sm: StateMachine;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly sendMessage: (to: NodeId, message: RaftMessage) => void;
  private readonly onStateChange: ((state: { role: Role; term: number; leader: NodeId | undefined }) => void) | undefined;

  private roleValue: Role = 'follower';
  private termValue = 0;
  private votedFor: NodeId | undefined;
  private leader: NodeId | undefined;
  /** Entries after the snapshot. */
  private log: LogEntry[] = [];
  private snapshotIndex = 0;
  private snapshotTerm = 0;
  private commit = 0;
  /**
   * The term of the last append or snapshot this member took from a leader, and the leader's
   * commit index it carried: what `caughtUp` compares `applied` with. -1 until one arrives.
   */
  private syncedTerm = -1;
  private syncedCommit = 0;
  /** When that append or snapshot arrived (clock ms). */
  private syncedAtMs = Number.NEGATIVE_INFINITY;
  private applied = 0;
  private lastLeaderContactMs = -Infinity;
  private votes = new Set<NodeId>();
  private readonly peers = new Map<NodeId, Peer>();
  private readonly proposals = new Map<number, { term: number; callback: ProposeCallback }>();
  private reads: PendingRead[] = [];
  private heartbeatSeq = 0;
  /** The snapshot at snapshotIndex, to send to followers that are too far behind. */
  private lastSnapshot: Snapshot | undefined;
  private electionTimer: TimerHandle | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  private running = false;

  constructor(options: RaftNodeOptions) {
    if (!options.voters.includes(options.id)) {
      throw new RaftError(RaftErrorCode.InvalidConfig, `raft member ${options.id} is not among the voters ${options.voters.join(', ')}`, { id: options.id });
    }
    this.id = options.id;
    this.voters = [...new Set(options.voters)];
    this.config = { ...DEFAULT_RAFT_CONFIG, ...options.config };
    if (!(this.config.electionTimeoutMinMs > this.config.heartbeatIntervalMs * 2 && this.config.electionTimeoutMaxMs >= this.config.electionTimeoutMinMs)) {
      throw new RaftError(
        RaftErrorCode.InvalidConfig,
        `raft timeouts are inconsistent: electionTimeoutMinMs (${this.config.electionTimeoutMinMs}) must exceed twice heartbeatIntervalMs (${this.config.heartbeatIntervalMs}) and not exceed electionTimeoutMaxMs (${this.config.electionTimeoutMaxMs})`,
        {},
      );
    }
    this.storage = options.storage;
    this.sm = options.stateMachine;
    this.clock = options.clock;
    this.rng = options.rng;
    this.sendMessage = options.send;
    this.onStateChange = options.onStateChange;
    const state = this.storage.load();
    this.termValue = state.term;
    this.votedFor = state.votedFor;
    if (state.snapshot !== undefined) {
      this.lastSnapshot = state.snapshot;
      this.sm.restore(state.snapshot.data);
      this.snapshotIndex = state.snapshot.lastIndex;
      this.snapshotTerm = state.snapshot.lastTerm;
      this.commit = this.snapshotIndex;
      this.applied = this.snapshotIndex;
    }
    this.log = state.entries.filter((e) => e.index > this.snapshotIndex);
  }

  // ------------------------------------------------------------ public surface

  get role(): Role {
    return this.roleValue;
  }
  get term(): number {
    return this.termValue;
  }
  get leaderId(): NodeId | undefined {
    return this.leader;
  }
  get commitIndex(): number {
    return this.commit;
  }
  get lastApplied(): number {
    return this.applied;
  }

  /**
   * Whether this member's state machine holds what the cluster had committed when it last heard
   * from the leader (to within a heartbeat): the leader once the no-op of its term is committed
   * and applied; a follower once it has applied the commit index of the leader's last successful
   * append (or snapshot) of the current term, if that came within an election timeout (a
   * follower cut off from the leader keeps its term, and would otherwise stay "caught up" with a
   * state that grows older; a leader cut off steps down). Not a started member before that: its commit index
   * starts at its snapshot (0 without one), so its state machine holds nothing of the log it
   * kept on disk until a leader tells it what is committed. (Reads served without the barrier of
   * `read` check it: a restarted master answered the agents' allocation list with an empty one.)
   */
  get caughtUp(): boolean {
    if (!this.running) return false;
    if (this.roleValue === 'leader') return this.commit >= this.firstIndexOfTerm() && this.applied >= this.commit;
    return this.roleValue === 'follower' && this.syncedTerm === this.termValue && this.applied >= this.syncedCommit && this.clock.nowMs() - this.syncedAtMs <= this.config.electionTimeoutMaxMs;
  }
  get lastIndex(): number {
    return this.snapshotIndex + this.log.length;
  }
  get firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  /** The entry at `index`, if still in the log (not compacted). */
  entryAt(index: number): LogEntry | undefined {
    return index > this.snapshotIndex ? this.log[index - this.snapshotIndex - 1] : undefined;
  }

  start(): void {
    this.running = true;
    this.resetElectionTimer();
  }

  stop(): void {
    this.running = false;
    this.electionTimer?.cancel();
    this.heartbeatTimer?.cancel();
    this.failProposals(new RaftError(RaftErrorCode.Stopped, `raft member ${this.id} stopped`, {}));
  }

  /**
   * Proposes a command. On the leader, `callback` gets the state machine's result once the
   * entry is committed and applied; elsewhere, at once, LASHUP_ERR_RAFT_NOT_LEADER naming the
   * leader it knows. If leadership is lost first, LASHUP_ERR_RAFT_LEADERSHIP_LOST (the command
   * may or may not have been committed: commands must be idempotent).
   */
  propose(command: Uint8Array, callback: ProposeCallback): void {
    if (!this.running || this.roleValue !== 'leader') {
      callback(this.notLeader());
      return;
    }
    const entry: LogEntry = { index: this.lastIndex + 1, term: this.termValue, command };
    this.appendLocal([entry]);
    this.proposals.set(entry.index, { term: this.termValue, callback });
    this.advanceCommit(); // a single voter commits at once
    this.replicateAll();
  }

  /**
   * A linearizable read barrier: `callback(null)` runs once this member is confirmed leader and
   * has applied everything committed before the call.
   */
  read(callback: (error: RaftError | null) => void): void {
    if (!this.running || this.roleValue !== 'leader') {
      callback(this.notLeader());
      return;
    }
    // Until an entry of its own term is committed the leader may not know the commit index.
    const readIndex = Math.max(this.commit, this.firstIndexOfTerm());
    this.reads.push({ readIndex, seq: ++this.heartbeatSeq, callback });
    if (this.voters.length === 1) this.serveReads();
    else this.broadcastAppends();
  }

  private notLeader(): RaftError {
    return new RaftError(
      RaftErrorCode.NotLeader,
      this.leader === undefined || this.leader === this.id
        ? `raft member ${this.id} is not the leader and knows no leader yet`
        : `raft member ${this.id} is not the leader; the leader is ${this.leader}`,
      { leader: this.leader === this.id ? undefined : this.leader },
    );
  }

  /** Handles a message from another voter (unknown senders are ignored). */
  receive(from: NodeId, message: RaftMessage): void {
    if (!this.running || from === this.id || !this.voters.includes(from)) return;
    switch (message.type) {
      case 'prevote':
        this.onPreVote(from, message);
        return;
      case 'prevote-reply':
        this.onPreVoteReply(from, message);
        return;
      case 'vote':
        this.onVote(from, message);
        return;
      case 'vote-reply':
        this.onVoteReply(from, message);
        return;
      case 'append':
        this.onAppend(from, message);
        return;
      case 'append-reply':
        this.onAppendReply(from, message);
        return;
      case 'snapshot':
        this.onSnapshot(from, message);
        return;
      case 'snapshot-reply':
        this.onSnapshotReply(from, message);
        return;
    }
  }

  // ------------------------------------------------------------ log helpers

  private termAt(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex) return undefined;
    return this.entryAt(index)?.term;
  }

  private lastTerm(): number {
    return this.log.length === 0 ? this.snapshotTerm : (this.log[this.log.length - 1] as LogEntry).term;
  }

  private firstIndexOfTerm(): number {
    for (let i = this.log.length - 1; i >= 0; i--) {
      const e = this.log[i] as LogEntry;
      if (e.term !== this.termValue) return e.index + 1;
    }
    return this.snapshotIndex + 1;
  }

  private appendLocal(entries: LogEntry[]): void {
    this.storage.replaceFrom((entries[0] as LogEntry).index, entries);
    this.log.push(...entries);
  }

  private quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  private logUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex);
  }

  // ------------------------------------------------------------ roles and timers

  private setState(role: Role, term: number, leader: NodeId | undefined): void {
    const changed = role !== this.roleValue || term !== this.termValue || leader !== this.leader;
    if (term !== this.termValue) {
      this.termValue = term;
      this.votedFor = undefined;
      this.storage.saveTermAndVote(term, undefined);
    }
    if (role !== 'leader' && this.roleValue === 'leader') {
      this.heartbeatTimer?.cancel();
      this.failProposals(new RaftError(RaftErrorCode.LeadershipLost, `raft member ${this.id} lost leadership in term ${this.termValue}`, { term }));
      for (const read of this.reads) read.callback(this.notLeader());
      this.reads = [];
    }
    this.roleValue = role;
    this.leader = leader;
    if (changed) this.onStateChange?.({ role, term, leader });
  }

  private failProposals(error: RaftError): void {
    const pending = [...this.proposals.values()];
    this.proposals.clear();
    for (const p of pending) p.callback(error);
  }

  private resetElectionTimer(): void {
    this.electionTimer?.cancel();
    if (!this.running) return;
    const { electionTimeoutMinMs: min, electionTimeoutMaxMs: max } = this.config;
    this.electionTimer = this.clock.setTimer(min + this.rng.int(max - min + 1), () => this.onElectionTimeout());
  }

  private onElectionTimeout(): void {
    if (!this.running) return;
    if (this.roleValue === 'leader') {
      // Check quorum: a leader that no longer hears a majority steps down.
      const now = this.clock.nowMs();
      let heard = 1;
      for (const peer of this.peers.values()) if (now - peer.lastHeardMs < this.config.electionTimeoutMaxMs) heard++;
      if (heard < this.quorum()) this.setState('follower', this.termValue, undefined);
      this.resetElectionTimer();
      return;
    }
    this.startPreVote();
  }

  private startPreVote(): void {
    this.resetElectionTimer();
    this.votes = new Set([this.id]);
    this.setState('precandidate', this.termValue, undefined);
    if (this.votes.size >= this.quorum()) {
      this.startElection();
      return;
    }
    for (const v of this.voters) if (v !== this.id) this.sendMessage(v, { type: 'prevote', term: this.termValue + 1, lastIndex: this.lastIndex, lastTerm: this.lastTerm() });
  }

  private startElection(): void {
    this.resetElectionTimer();
    this.setState('candidate', this.termValue + 1, undefined);
    this.votedFor = this.id;
    this.storage.saveTermAndVote(this.termValue, this.id);
    this.votes = new Set([this.id]);
    if (this.votes.size >= this.quorum()) {
      this.becomeLeader();
      return;
    }
    for (const v of this.voters) if (v !== this.id) this.sendMessage(v, { type: 'vote', term: this.termValue, lastIndex: this.lastIndex, lastTerm: this.lastTerm() });
  }

  private becomeLeader(): void {
    this.setState('leader', this.termValue, this.id);
    const now = this.clock.nowMs();
    this.peers.clear();
    for (const v of this.voters) {
      if (v !== this.id) this.peers.set(v, { nextIndex: this.lastIndex + 1, matchIndex: 0, ackedSeq: 0, lastHeardMs: now, inFlight: false, inFlightSince: 0, sentCommit: 0 });
    }
    // A no-op of its own term lets the leader commit (and learn the commit index).
    this.appendLocal([{ index: this.lastIndex + 1, term: this.termValue, command: new Uint8Array(0) }]);
    this.advanceCommit();
    this.broadcastAppends();
    this.scheduleHeartbeat();
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = this.clock.setTimer(this.config.heartbeatIntervalMs, () => {
      if (this.roleValue !== 'leader' || !this.running) return;
      this.broadcastAppends();
      this.scheduleHeartbeat();
    });
  }

  /** Reacts to a higher term seen in any message: step down. */
  private observeTerm(term: number): void {
    if (term > this.termValue) this.setState('follower', term, undefined);
  }

  private leaderRecentlyHeard(): boolean {
    return this.leader !== undefined && this.clock.nowMs() - this.lastLeaderContactMs < this.config.electionTimeoutMinMs;
  }

  // ------------------------------------------------------------ votes

  private onPreVote(from: NodeId, m: Extract<RaftMessage, { type: 'prevote' }>): void {
    // No term change here: a pre-vote commits nobody to anything.
    const granted = m.term > this.termValue && !this.leaderRecentlyHeard() && this.roleValue !== 'leader' && this.logUpToDate(m.lastIndex, m.lastTerm);
    this.sendMessage(from, { type: 'prevote-reply', term: granted ? m.term : this.termValue, granted });
  }

  private onPreVoteReply(from: NodeId, m: Extract<RaftMessage, { type: 'prevote-reply' }>): void {
    if (m.term > this.termValue + 1 || (!m.granted && m.term > this.termValue)) {
      this.observeTerm(m.term);
      return;
    }
    if (this.roleValue !== 'precandidate' || !m.granted || m.term !== this.termValue + 1) return;
    this.votes.add(from);
    if (this.votes.size >= this.quorum()) this.startElection();
  }

  private onVote(from: NodeId, m: Extract<RaftMessage, { type: 'vote' }>): void {
    // Ignore disruptive candidates while a leader is known to be alive (thesis 4.2.3).
    if (m.term > this.termValue && this.leaderRecentlyHeard()) return;
    this.observeTerm(m.term);
    let granted = false;
    if (m.term === this.termValue && (this.votedFor === undefined || this.votedFor === from) && this.logUpToDate(m.lastIndex, m.lastTerm)) {
      granted = true;
      if (this.votedFor !== from) {
        this.votedFor = from;
        this.storage.saveTermAndVote(this.termValue, from);
      }
      this.resetElectionTimer();
    }
    this.sendMessage(from, { type: 'vote-reply', term: this.termValue, granted });
  }

  private onVoteReply(from: NodeId, m: Extract<RaftMessage, { type: 'vote-reply' }>): void {
    this.observeTerm(m.term);
    if (this.roleValue !== 'candidate' || m.term !== this.termValue || !m.granted) return;
    this.votes.add(from);
    if (this.votes.size >= this.quorum()) this.becomeLeader();
  }

  // ------------------------------------------------------------ replication (leader side)

  private broadcastAppends(): void {
    this.heartbeatSeq++;
    for (const [id, peer] of this.peers) this.sendAppend(id, peer, true);
  }

  private replicateAll(): void {
    for (const [id, peer] of this.peers) if (!peer.inFlight) this.sendAppend(id, peer, false);
  }

  private sendAppend(to: NodeId, peer: Peer, heartbeat: boolean): void {
    const now = this.clock.nowMs();
    // One request at a time per peer; a heartbeat goes anyway (it carries reads and keeps
    // followers quiet) and a request older than a heartbeat is presumed lost.
    if (peer.inFlight && !heartbeat && now - peer.inFlightSince < this.config.heartbeatIntervalMs) return;
    const seq = this.heartbeatSeq;
    if (peer.nextIndex <= this.snapshotIndex) {
      const snapshot = this.currentSnapshot();
      peer.inFlight = true;
      peer.inFlightSince = now;
      this.sendMessage(to, { type: 'snapshot', term: this.termValue, lastIndex: snapshot.lastIndex, lastTerm: snapshot.lastTerm, data: snapshot.data, seq });
      return;
    }
    const prevIndex = peer.nextIndex - 1;
    const prevTerm = this.termAt(prevIndex) as number;
    const start = prevIndex - this.snapshotIndex;
    const entries = this.log.slice(start, start + this.config.maxEntriesPerAppend);
    peer.inFlight = entries.length > 0;
    peer.inFlightSince = now;
    peer.sentCommit = this.commit;
    this.sendMessage(to, { type: 'append', term: this.termValue, prevIndex, prevTerm, entries, commit: this.commit, seq });
  }

  private currentSnapshot(): Snapshot {
    if (this.lastSnapshot === undefined || this.lastSnapshot.lastIndex !== this.snapshotIndex) {
      throw new RaftError(RaftErrorCode.Internal, `raft member ${this.id} has no snapshot at index ${this.snapshotIndex} to send`, {});
    }
    return this.lastSnapshot;
  }

  private onAppendReply(from: NodeId, m: Extract<RaftMessage, { type: 'append-reply' }>): void {
    this.observeTerm(m.term);
    if (this.roleValue !== 'leader' || m.term !== this.termValue) return;
    const peer = this.peers.get(from) as Peer;
    peer.lastHeardMs = this.clock.nowMs();
    peer.inFlight = false;
    peer.ackedSeq = Math.max(peer.ackedSeq, m.seq);
    if (m.success) {
      if (m.matchIndex > peer.matchIndex) peer.matchIndex = m.matchIndex;
      peer.nextIndex = Math.max(peer.nextIndex, peer.matchIndex + 1);
      this.advanceCommit();
    } else {
      // The follower says where its log ends or first conflicts: jump there.
      peer.nextIndex = Math.max(1, Math.min(peer.nextIndex - 1, m.matchIndex + 1));
    }
    this.serveReads();
    if (peer.nextIndex <= this.lastIndex || peer.sentCommit < this.commit) this.sendAppend(from, peer, false);
  }

  private onSnapshotReply(from: NodeId, m: Extract<RaftMessage, { type: 'snapshot-reply' }>): void {
    this.observeTerm(m.term);
    if (this.roleValue !== 'leader' || m.term !== this.termValue) return;
    const peer = this.peers.get(from) as Peer;
    peer.lastHeardMs = this.clock.nowMs();
    peer.inFlight = false;
    peer.ackedSeq = Math.max(peer.ackedSeq, m.seq);
    peer.matchIndex = Math.max(peer.matchIndex, m.matchIndex);
    peer.nextIndex = Math.max(peer.nextIndex, peer.matchIndex + 1);
    this.advanceCommit();
    this.serveReads();
    if (peer.nextIndex <= this.lastIndex || peer.sentCommit < this.commit) this.sendAppend(from, peer, false);
  }

  private advanceCommit(): void {
    const matches = [this.lastIndex, ...[...this.peers.values()].map((p) => p.matchIndex)].sort((a, b) => b - a);
    const majorityMatch = matches[this.quorum() - 1] as number;
    // Only entries of the current term commit by counting (figure 8 of the paper).
    if (majorityMatch > this.commit && this.termAt(majorityMatch) === this.termValue) {
      this.commit = majorityMatch;
      this.applyCommitted();
      // Followers learn the new commit index now, not at the next heartbeat (up to 250 ms
      // later): a master answers agents' allocation reads from what it applied, and a
      // follower is asked too (the periodic whole-list fetch, a peek while no leader is known).
      for (const [id, peer] of this.peers) if (peer.sentCommit < this.commit) this.sendAppend(id, peer, false);
    }
  }

  private serveReads(): void {
    if (this.reads.length === 0 || this.roleValue !== 'leader') return;
    const acked = (seq: number): number => 1 + [...this.peers.values()].filter((p) => p.ackedSeq >= seq).length;
    const ready: PendingRead[] = [];
    const remaining: PendingRead[] = [];
    for (const read of this.reads) (acked(read.seq) >= this.quorum() && this.applied >= read.readIndex ? ready : remaining).push(read);
    // The list is settled before any callback runs: a callback that proposes re-enters here
    // (a single voter commits and applies at once), and a read still listed was served again,
    // without end (seen: a release read behind a barrier overflowed the stack).
    this.reads = remaining;
    for (const read of ready) read.callback(null);
  }

  // ------------------------------------------------------------ replication (follower side)

  private acceptLeader(from: NodeId, term: number): void {
    this.observeTerm(term);
    this.lastLeaderContactMs = this.clock.nowMs();
    if (this.roleValue !== 'follower' || this.leader !== from) this.setState('follower', term, from);
    this.resetElectionTimer();
  }

  private onAppend(from: NodeId, m: Extract<RaftMessage, { type: 'append' }>): void {
    if (m.term < this.termValue) {
      this.sendMessage(from, { type: 'append-reply', term: this.termValue, success: false, matchIndex: this.lastIndex, seq: m.seq });
      return;
    }
    this.acceptLeader(from, m.term);
    if (m.prevIndex > this.lastIndex) {
      this.sendMessage(from, { type: 'append-reply', term: this.termValue, success: false, matchIndex: this.lastIndex, seq: m.seq });
      return;
    }
    if (m.prevIndex >= this.snapshotIndex && this.termAt(m.prevIndex) !== m.prevTerm) {
      // Conflict: answer with the last index before the conflicting term, so the leader backs
      // off a whole term at a time.
      const conflictTerm = this.termAt(m.prevIndex);
      let back = m.prevIndex - 1;
      while (back > this.snapshotIndex && this.termAt(back) === conflictTerm) back--;
      this.sendMessage(from, { type: 'append-reply', term: this.termValue, success: false, matchIndex: Math.max(this.snapshotIndex, back), seq: m.seq });
      return;
    }
    // Skip what the snapshot already holds, then find the first entry that is new or conflicts.
    let i = 0;
    while (i < m.entries.length && (m.entries[i] as LogEntry).index <= this.snapshotIndex) i++;
    for (; i < m.entries.length; i++) {
      const e = m.entries[i] as LogEntry;
      const mine = this.termAt(e.index);
      if (mine === undefined || mine !== e.term) break;
    }
    const fresh = m.entries.slice(i);
    if (fresh.length > 0) {
      const first = (fresh[0] as LogEntry).index;
      this.storage.replaceFrom(first, fresh);
      this.log.length = first - this.snapshotIndex - 1;
      this.log.push(...fresh);
    }
    const lastNew = m.entries.length > 0 ? (m.entries[m.entries.length - 1] as LogEntry).index : m.prevIndex;
    if (m.commit > this.commit) {
      this.commit = Math.min(m.commit, Math.max(lastNew, this.commit));
      this.applyCommitted();
    }
    this.syncedTerm = this.termValue;
    this.syncedCommit = m.commit;
    this.syncedAtMs = this.clock.nowMs();
    this.sendMessage(from, { type: 'append-reply', term: this.termValue, success: true, matchIndex: lastNew, seq: m.seq });
  }

  private onSnapshot(from: NodeId, m: Extract<RaftMessage, { type: 'snapshot' }>): void {
    if (m.term < this.termValue) {
      this.sendMessage(from, { type: 'snapshot-reply', term: this.termValue, matchIndex: this.lastIndex, seq: m.seq });
      return;
    }
    this.acceptLeader(from, m.term);
    if (m.lastIndex > this.commit) {
      const snapshot: Snapshot = { lastIndex: m.lastIndex, lastTerm: m.lastTerm, data: m.data };
      // Keep the log after the snapshot when it agrees with it; otherwise start over from it.
      const keep = this.termAt(m.lastIndex) === m.lastTerm ? this.log.filter((e) => e.index > m.lastIndex) : [];
      this.storage.saveSnapshot(snapshot);
      if (keep.length === 0) this.storage.replaceFrom(m.lastIndex + 1, []);
      this.sm.restore(m.data);
      this.lastSnapshot = snapshot;
      this.snapshotIndex = m.lastIndex;
      this.snapshotTerm = m.lastTerm;
      this.log = keep;
      this.commit = m.lastIndex;
      this.applied = m.lastIndex;
    }
    this.syncedTerm = this.termValue;
    this.syncedCommit = Math.max(this.syncedCommit, m.lastIndex);
    this.syncedAtMs = this.clock.nowMs();
    this.sendMessage(from, { type: 'snapshot-reply', term: this.termValue, matchIndex: Math.max(m.lastIndex, this.commit), seq: m.seq });
  }

  // ------------------------------------------------------------ applying

  private applyCommitted(): void {
    while (this.applied < this.commit) {
      const index = this.applied + 1;
      const entry = this.entryAt(index) as LogEntry;
      const result = entry.command.length === 0 ? new Uint8Array(0) : this.sm.apply(entry.command, index);
      this.applied = index;
      const proposal = this.proposals.get(index);
      if (proposal !== undefined) {
        this.proposals.delete(index);
        if (proposal.term === entry.term) proposal.callback(null, result, index);
        else proposal.callback(new RaftError(RaftErrorCode.LeadershipLost, `the entry proposed at index ${index} was replaced by another leader's`, { index }));
      }
    }
    this.serveReads();
    if (this.applied - this.snapshotIndex >= this.config.snapshotEveryEntries) this.takeSnapshot();
  }

  private takeSnapshot(): void {
    const lastIndex = this.applied;
    const snapshot: Snapshot = { lastIndex, lastTerm: this.termAt(lastIndex) as number, data: this.sm.snapshot() };
    this.storage.saveSnapshot(snapshot);
    this.log = this.log.filter((e) => e.index > lastIndex);
    this.snapshotIndex = lastIndex;
    this.snapshotTerm = snapshot.lastTerm;
    this.lastSnapshot = snapshot;
  }
}
