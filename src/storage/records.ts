/**
 * Checksummed record framing for append-only files: [length u32 LE][crc32 u32 LE][payload].
 * A reader stops at the first record that is cut short or fails its checksum, and says where:
 * the caller truncates a torn tail there.
 */
import { crc32 } from '../common/index.js';

/** Largest record accepted when reading (a corrupt length must not allocate gigabytes). */
export const MAX_RECORD_BYTES = 512 * 1024 * 1024;

export function frameRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  view.setUint32(4, crc32(payload), true);
  out.set(payload, 8);
  return out;
}

/** Every whole, valid record from the start, and the byte length they span. */
export function readRecords(data: Uint8Array): { records: Uint8Array[]; validBytes: number; ends: number[] } {
  const records: Uint8Array[] = [];
  const ends: number[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at + 8 <= data.length) {
    const length = view.getUint32(at, true);
    const sum = view.getUint32(at + 4, true);
    if (length > MAX_RECORD_BYTES || at + 8 + length > data.length) break;
    if (crc32(data, at + 8, at + 8 + length) !== sum) break;
    records.push(data.subarray(at + 8, at + 8 + length));
    at += 8 + length;
    ends.push(at);
  }
  return { records, validBytes: at, ends };
}
