/**
 * Raft's data: log entries, messages, and the interfaces the core needs from its shells.
 */

export type NodeId = string;

export interface LogEntry {
  readonly index: number;
  readonly term: number;
  /** An opaque command for the state machine (empty: a leader's no-op at the start of its term). */
  readonly command: Uint8Array;
}

/** What survives a restart. The core calls these synchronously and expects them durable on return. */
export interface RaftStorage {
  /** Term, vote and log as recovered at start. */
  load(): PersistentState;
  /** Persists term and vote (fsynced before return). */
  saveTermAndVote(term: number, votedFor: NodeId | undefined): void;
  /** Appends entries after truncating everything from `fromIndex` on (fsynced before return). */
  replaceFrom(fromIndex: number, entries: readonly LogEntry[]): void;
  /** Replaces everything up to `snapshot.lastIndex` by the snapshot (and drops older entries). */
  saveSnapshot(snapshot: Snapshot): void;
}

export interface PersistentState {
  term: number;
  votedFor: NodeId | undefined;
  /** Entries after the snapshot, in order. */
  entries: LogEntry[];
  snapshot: Snapshot | undefined;
}

export interface Snapshot {
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly data: Uint8Array;
}

/** The replicated state machine. Deterministic: the same commands give the same states. */
export interface StateMachine {
  /** Applies a committed command; the result goes back to the proposer (on the leader). */
  apply(command: Uint8Array, index: number): Uint8Array;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export type RaftMessage =
  | { type: 'prevote'; term: number; lastIndex: number; lastTerm: number }
  | { type: 'prevote-reply'; term: number; granted: boolean }
  | { type: 'vote'; term: number; lastIndex: number; lastTerm: number }
  | { type: 'vote-reply'; term: number; granted: boolean }
  | {
      type: 'append';
      term: number;
      prevIndex: number;
      prevTerm: number;
      entries: LogEntry[];
      commit: number;
      /** Echoed in the reply: read-index rounds and heartbeat acks match on it. */
      seq: number;
    }
  | { type: 'append-reply'; term: number; success: boolean; matchIndex: number; seq: number }
  | { type: 'snapshot'; term: number; lastIndex: number; lastTerm: number; data: Uint8Array; seq: number }
  | { type: 'snapshot-reply'; term: number; matchIndex: number; seq: number };

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';
