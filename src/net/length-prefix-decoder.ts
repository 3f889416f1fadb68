/**
 * No exception per received chunk in libp2p's length-prefixed decoder.
 *
 * @libp2p/utils' LengthPrefixedDecoder (7.4.1; the noise transport decodes every encrypted frame
 * with it) reads the next length prefix after each frame and learns that the buffer is empty
 * by catching the RangeError its length decoder throws: one Error, with its stack trace, for
 * every chunk that arrives on every connection. In a 7-node process spreading store updates,
 * the throwing function was the largest self time of all JavaScript (4.6 % of the busy time);
 * lodestar measured the same pattern in mplex (ChainSafe/lodestar#3467).
 *
 * The decoder's loop stops, without an exception, when the buffer holds less than a whole
 * frame. So an empty buffer is answered with length 0: a frame of `encodingLength(0)` bytes (2
 * for noise's 16-bit prefix, at least 1 for any prefix), which an empty buffer never holds, and
 * the loop ends exactly where it ended before. Any other input goes to the decoder's own length
 * decoder, unchanged (a partial prefix still throws and ends the loop as before).
 *
 * Written here: no release of the library avoids the throw, and there is no option for it.
 * Installed once when libp2p's modules load (src/net/libp2p.ts); the class is passed in so
 * that this file loads nothing itself.
 */

interface DecoderLike {
  lengthDecoder: (data: { byteLength: number }) => number;
  decode(buf: unknown): Iterable<unknown>;
}

/** The library's decoder class; its fields used here are not in its public types. */
export interface LengthPrefixedDecoderClass {
  prototype: object;
}

/** Decoders given the empty-buffer answer since the process started (tests read it). */
export const lengthPrefixStats = { decoders: 0 };

const installed = new WeakSet<object>();
const quiet = new WeakSet<object>();

/** Installs the empty-buffer answer on `decoderClass` (idempotent). */
export function installQuietLengthPrefix(decoderClass: LengthPrefixedDecoderClass): void {
  const proto = decoderClass.prototype as DecoderLike;
  if (installed.has(proto)) return;
  installed.add(proto);
  const original = proto.decode;
  proto.decode = function decode(this: DecoderLike, buf: unknown): Iterable<unknown> {
    if (!quiet.has(this)) {
      quiet.add(this);
      lengthPrefixStats.decoders++;
      const inner = this.lengthDecoder;
      this.lengthDecoder = (data) => (data.byteLength === 0 ? 0 : inner(data));
    }
    return original.call(this, buf);
  };
}
