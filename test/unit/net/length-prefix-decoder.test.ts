/**
 * The empty-buffer answer in libp2p's length-prefixed decoder (src/net/length-prefix-decoder.ts):
 * the same frames come out for any split of the input, and the length decoder is never asked
 * about an empty buffer (where it threw a RangeError for every chunk).
 */
import t from 'tap';
import { LengthPrefixedDecoder } from '@libp2p/utils';
import { installQuietLengthPrefix } from '../../../src/net/length-prefix-decoder.js';
import { SeededRng } from '../../../src/common/index.js';

/** noise's length prefix: 16 bits, big-endian; throws on fewer than 2 bytes, as noise's does. */
let emptyAsks = 0;
function uint16(data: Uint8Array | { byteLength: number; getUint16(offset: number): number }): number {
  if (data.byteLength === 0) emptyAsks++;
  if (data.byteLength < 2) throw new RangeError('Could not decode int16BE');
  return data instanceof Uint8Array ? (data[0] as number) * 256 + (data[1] as number) : data.getUint16(0);
}

function frames(rng: SeededRng, count: number): { wire: Uint8Array; payloads: Uint8Array[] } {
  const payloads: Uint8Array[] = [];
  const parts: number[] = [];
  for (let i = 0; i < count; i++) {
    const payload = Uint8Array.from({ length: rng.int(300) }, () => rng.int(256));
    payloads.push(payload);
    parts.push(payload.length >> 8, payload.length & 0xff, ...payload);
  }
  // Empty frames are skipped by the decoder: expected output leaves them out.
  return { wire: Uint8Array.from(parts), payloads: payloads.filter((p) => p.length > 0) };
}

function decodeAll(wire: Uint8Array, rng: SeededRng): Uint8Array[] {
  const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16, encodingLength: () => 2 });
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < wire.length) {
    const next = Math.min(wire.length, at + 1 + rng.int(200));
    for (const buf of decoder.decode(wire.subarray(at, next))) out.push(buf instanceof Uint8Array ? buf : buf.subarray());
    at = next;
  }
  return out;
}

t.test('frames decode the same for any split; an empty buffer is never decoded', async (t) => {
  const rng = new SeededRng(7);
  const before = frames(rng, 50);
  emptyAsks = 0;
  t.same(decodeAll(before.wire, rng), before.payloads, 'library decoder alone');
  t.ok(emptyAsks > 0, `the library asks about an empty buffer (${emptyAsks} times)`);

  installQuietLengthPrefix(LengthPrefixedDecoder);
  installQuietLengthPrefix(LengthPrefixedDecoder);
  for (let run = 0; run < 20; run++) {
    const { wire, payloads } = frames(rng, 40);
    emptyAsks = 0;
    const decoded = decodeAll(wire, rng);
    if (decoded.length !== payloads.length || decoded.some((d, i) => Buffer.compare(d, payloads[i] as Uint8Array) !== 0)) {
      t.fail(`run ${run}: frames differ`);
      return;
    }
    t.equal(emptyAsks, 0, `run ${run}: no question about an empty buffer`);
  }
});
