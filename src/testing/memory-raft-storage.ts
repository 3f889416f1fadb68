/**
 * Raft storage in memory: for simulations, where it outlives a simulated crash (the test keeps
 * it) exactly as a disk would, since every write here is "durable" at once.
 */
import type { LogEntry, NodeId, PersistentState, RaftStorage, Snapshot } from '../raft/types.js';

export class MemoryRaftStorage implements RaftStorage {
  term = 0;
  votedFor: NodeId | undefined;
  entries: LogEntry[] = [];
  snapshot: Snapshot | undefined;

  load(): PersistentState {
    return { term: this.term, votedFor: this.votedFor, entries: [...this.entries], snapshot: this.snapshot };
  }

  saveTermAndVote(term: number, votedFor: NodeId | undefined): void {
    this.term = term;
    this.votedFor = votedFor;
  }

  replaceFrom(fromIndex: number, entries: readonly LogEntry[]): void {
    this.entries = this.entries.filter((e) => e.index < fromIndex).concat(entries);
  }

  saveSnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = this.entries.filter((e) => e.index > snapshot.lastIndex);
  }
}
