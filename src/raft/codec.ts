/**
 * Raft messages on the wire (msgpack arrays, version 1). Decoding treats input as hostile and
 * throws only RaftError (LASHUP_ERR_RAFT_DECODE).
 */
import { Packr, Unpackr } from 'msgpackr';
import { RaftError, RaftErrorCode } from './errors.js';
import type { LogEntry, RaftMessage } from './types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });
const TYPES = ['prevote', 'prevote-reply', 'vote', 'vote-reply', 'append', 'append-reply', 'snapshot', 'snapshot-reply'] as const;
export const RAFT_WIRE_VERSION = 1;

export function encodeRaftMessage(m: RaftMessage): Uint8Array {
  const t = TYPES.indexOf(m.type);
  switch (m.type) {
    case 'prevote':
    case 'vote':
      return packr.pack([RAFT_WIRE_VERSION, t, m.term, m.lastIndex, m.lastTerm]).slice();
    case 'prevote-reply':
    case 'vote-reply':
      return packr.pack([RAFT_WIRE_VERSION, t, m.term, m.granted]).slice();
    case 'append':
      return packr.pack([RAFT_WIRE_VERSION, t, m.term, m.prevIndex, m.prevTerm, m.entries.map((e) => [e.index, e.term, e.command]), m.commit, m.seq]).slice();
    case 'append-reply':
      return packr.pack([RAFT_WIRE_VERSION, t, m.term, m.success, m.matchIndex, m.seq]).slice();
    case 'snapshot':
      return packr.pack([RAFT_WIRE_VERSION, t, m.term, m.lastIndex, m.lastTerm, m.data, m.seq]).slice();
    case 'snapshot-reply':
      return packr.pack([RAFT_WIRE_VERSION, t, m.term, m.matchIndex, m.seq]).slice();
  }
}

function fail(message: string): never {
  throw new RaftError(RaftErrorCode.Decode, `malformed raft message: ${message}`, {});
}

function nat(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(`${what} must be a non-negative integer, found ${String(value)}`);
  return value;
}

function bool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') fail(`${what} must be a boolean`);
  return value;
}

function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(`${what} must be bytes`);
  return value;
}

export function decodeRaftMessage(data: Uint8Array): RaftMessage {
  let raw: unknown;
  try {
    raw = unpackr.unpack(data);
  } catch (err) {
    fail(`not msgpack (${(err as Error).message})`);
  }
  if (!Array.isArray(raw) || raw.length < 3) fail('expected [version, type, ...]');
  if (raw[0] !== RAFT_WIRE_VERSION) fail(`version ${String(raw[0])} is not ${RAFT_WIRE_VERSION}`);
  const type = TYPES[raw[1] as number];
  if (type === undefined) fail(`unknown type ${String(raw[1])}`);
  const expect = (n: number): void => {
    if (raw.length !== n) fail(`a ${type} message has ${n} items, found ${raw.length}`);
  };
  const term = nat(raw[2], 'term');
  switch (type) {
    case 'prevote':
    case 'vote':
      expect(5);
      return { type, term, lastIndex: nat(raw[3], 'lastIndex'), lastTerm: nat(raw[4], 'lastTerm') };
    case 'prevote-reply':
    case 'vote-reply':
      expect(4);
      return { type, term, granted: bool(raw[3], 'granted') };
    case 'append': {
      expect(8);
      if (!Array.isArray(raw[5])) fail('entries must be an array');
      const entries: LogEntry[] = raw[5].map((e: unknown, i: number) => {
        if (!Array.isArray(e) || e.length !== 3) fail(`entries[${i}] must be [index, term, command]`);
        return { index: nat(e[0], `entries[${i}].index`), term: nat(e[1], `entries[${i}].term`), command: bytes(e[2], `entries[${i}].command`) };
      });
      const prevIndex = nat(raw[3], 'prevIndex');
      entries.forEach((e, i) => {
        if (e.index !== prevIndex + i + 1) fail(`entries must follow prevIndex without gaps (entry ${i} has index ${e.index})`);
      });
      return { type, term, prevIndex, prevTerm: nat(raw[4], 'prevTerm'), entries, commit: nat(raw[6], 'commit'), seq: nat(raw[7], 'seq') };
    }
    case 'append-reply':
      expect(6);
      return { type, term, success: bool(raw[3], 'success'), matchIndex: nat(raw[4], 'matchIndex'), seq: nat(raw[5], 'seq') };
    case 'snapshot':
      expect(7);
      return { type, term, lastIndex: nat(raw[3], 'lastIndex'), lastTerm: nat(raw[4], 'lastTerm'), data: bytes(raw[5], 'data'), seq: nat(raw[6], 'seq') };
    case 'snapshot-reply':
      expect(5);
      return { type, term, matchIndex: nat(raw[3], 'matchIndex'), seq: nat(raw[4], 'seq') };
  }
}
