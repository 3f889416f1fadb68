/**
 * Push-pull state sync over a reliable stream, by bucket digests.
 *
 * memberlist sends the whole member list both ways on every push-pull: about 2 MB each way at
 * 10,000 members. Here the initiator first sends per-bucket sums of member digests (name,
 * incarnation and state hashed; members bucketed by name hash), the responder answers with the
 * buckets that differ and its members in them, and the initiator sends its members in those
 * buckets. Two members that agree exchange a few hundred bytes; a joining node, which differs
 * everywhere, receives everything, as it must.
 *
 *   initiator -> responder   [1, version, joining, fromName, buckets, sums (4 bytes LE per bucket)]
 *   responder -> initiator   [2, fromName, differing buckets (bitmap: bucket i = bit i % 8 of byte i / 8)]
 *   both ways                [3, [[name, address, incarnation, state, meta], ...]]  (chunked)
 *   both ways                [4]  done
 *
 * A digest collision (different states, equal sums) leaves one bucket unrepaired until a member
 * in it changes or the next sync picks other sums: harmless with gossip also running.
 */
import { Packr } from 'msgpackr';
import { decodeFail, describeRaw, readAddress, readIncarnation, readMeta, readName, unpackHostile } from './codec.js';
import { MembershipError, MembershipErrorCode } from './errors.js';
import { MemberState } from './table.js';

export const SYNC_PROTOCOL = '/lashup/swim/sync/1';
export const PING_PROTOCOL = '/lashup/swim/ping/1';
export const SYNC_VERSION = 1;

export const SyncMessageType = { Hello: 1, Diff: 2, Records: 3, Done: 4 } as const;

/** Largest bucket count a peer may ask for. */
export const MAX_SYNC_BUCKETS = 4096;
/** Member records per RECORDS message (about 100 KB at most). */
export const RECORDS_PER_MESSAGE = 256;

export interface SyncRecord {
  name: string;
  address: string;
  incarnation: number;
  state: MemberState;
  meta: Uint8Array;
}

export type SyncMessage =
  | { type: typeof SyncMessageType.Hello; joining: boolean; from: string; buckets: number; sums: Uint32Array }
  | { type: typeof SyncMessageType.Diff; from: string; differing: Uint8Array }
  | { type: typeof SyncMessageType.Records; records: SyncRecord[] }
  | { type: typeof SyncMessageType.Done };

const packr = new Packr({ useRecords: false, moreTypes: false });

/** Buckets for a sync from a node that knows `members` members: about 8 members a bucket. */
export function bucketCountFor(members: number): number {
  let buckets = 1;
  while (buckets * 8 < members && buckets < 1024) buckets *= 2;
  return buckets;
}

export function encodeSync(message: SyncMessage): Uint8Array {
  switch (message.type) {
    case SyncMessageType.Hello: {
      const sums = new Uint8Array(message.sums.length * 4);
      const view = new DataView(sums.buffer);
      message.sums.forEach((s, i) => {
        view.setUint32(i * 4, s, true);
      });
      return packr.pack([message.type, SYNC_VERSION, message.joining, message.from, message.buckets, sums]).slice();
    }
    case SyncMessageType.Diff:
      return packr.pack([message.type, message.from, message.differing]).slice();
    case SyncMessageType.Records:
      return packr.pack([message.type, message.records.map((r) => [r.name, r.address, r.incarnation, r.state, r.meta])]).slice();
    case SyncMessageType.Done:
      return packr.pack([message.type]).slice();
  }
}

function readState(value: unknown, path: string): MemberState {
  if (value !== MemberState.Alive && value !== MemberState.Suspect && value !== MemberState.Dead && value !== MemberState.Left) {
    decodeFail(path, `expected a member state (1 alive, 2 suspect, 3 dead, 4 left), found ${describeRaw(value)}`);
  }
  return value;
}

/** Decodes one sync message. Throws only MembershipError. */
export function decodeSync(bytes: Uint8Array, maxBytes: number): SyncMessage {
  if (bytes.byteLength > maxBytes) decodeFail('sync', `${bytes.byteLength} bytes exceed the limit of ${maxBytes}`);
  const raw = unpackHostile(bytes, 'sync message');
  if (!Array.isArray(raw) || raw.length === 0) decodeFail('sync', `expected a message array, found ${describeRaw(raw)}`);
  switch (raw[0]) {
    case SyncMessageType.Hello: {
      if (raw.length !== 6) decodeFail('sync.hello', `expected 6 items, found ${raw.length}`);
      if (raw[1] !== SYNC_VERSION) {
        throw new MembershipError(MembershipErrorCode.UnsupportedVersion, `sync protocol version ${String(raw[1])} is not supported; this build speaks version ${SYNC_VERSION}`, {
          version: raw[1],
          supported: [SYNC_VERSION],
        });
      }
      if (typeof raw[2] !== 'boolean') decodeFail('sync.hello.joining', `expected a boolean, found ${describeRaw(raw[2])}`);
      const buckets = raw[4];
      if (typeof buckets !== 'number' || !Number.isInteger(buckets) || buckets < 1 || buckets > MAX_SYNC_BUCKETS || (buckets & (buckets - 1)) !== 0) {
        decodeFail('sync.hello.buckets', `expected a power of two from 1 to ${MAX_SYNC_BUCKETS}, found ${describeRaw(buckets)}`);
      }
      const sumBytes = raw[5];
      if (!(sumBytes instanceof Uint8Array) || sumBytes.byteLength !== buckets * 4) {
        decodeFail('sync.hello.sums', `expected ${buckets * 4} bytes, found ${describeRaw(sumBytes)}`);
      }
      const view = new DataView(sumBytes.buffer, sumBytes.byteOffset, sumBytes.byteLength);
      const sums = new Uint32Array(buckets);
      for (let i = 0; i < buckets; i++) sums[i] = view.getUint32(i * 4, true);
      return { type: SyncMessageType.Hello, joining: raw[2], from: readName(raw[3], 'sync.hello.from'), buckets, sums };
    }
    case SyncMessageType.Diff: {
      if (raw.length !== 3 || !(raw[2] instanceof Uint8Array) || raw[2].byteLength > MAX_SYNC_BUCKETS / 8) {
        decodeFail('sync.diff', `expected [2, name, bitmap of at most ${MAX_SYNC_BUCKETS / 8} bytes]`);
      }
      return { type: SyncMessageType.Diff, from: readName(raw[1], 'sync.diff.from'), differing: raw[2] };
    }
    case SyncMessageType.Records: {
      if (raw.length !== 2 || !Array.isArray(raw[1]) || raw[1].length > RECORDS_PER_MESSAGE) {
        decodeFail('sync.records', `expected [3, an array of at most ${RECORDS_PER_MESSAGE} records]`);
      }
      const records = raw[1].map((r: unknown, i: number): SyncRecord => {
        const path = `sync.records[${i}]`;
        if (!Array.isArray(r) || r.length !== 5) decodeFail(path, `expected [name, address, incarnation, state, meta], found ${describeRaw(r)}`);
        return {
          name: readName(r[0], `${path}.name`),
          address: readAddress(r[1], `${path}.address`),
          incarnation: readIncarnation(r[2], `${path}.incarnation`),
          state: readState(r[3], `${path}.state`),
          meta: readMeta(r[4], `${path}.meta`),
        };
      });
      return { type: SyncMessageType.Records, records };
    }
    case SyncMessageType.Done:
      if (raw.length !== 1) decodeFail('sync.done', `expected [4], found ${raw.length} items`);
      return { type: SyncMessageType.Done };
    default:
      decodeFail('sync[0]', `expected a sync message type (1 to 4), found ${describeRaw(raw[0])}`);
  }
}

/** True when bit `bucket` is set in a DIFF bitmap. */
export function bucketDiffers(differing: Uint8Array, bucket: number): boolean {
  const byte = differing[bucket >> 3];
  return byte !== undefined && (byte & (1 << (bucket & 7))) !== 0;
}

/** The DIFF bitmap of the buckets whose sums differ. */
export function diffBitmap(mine: Uint32Array, theirs: Uint32Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(mine.length / 8));
  for (let i = 0; i < mine.length; i++) if (mine[i] !== theirs[i]) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
  return out;
}
