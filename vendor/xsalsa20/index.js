/**
 * XSalsa20 as a byte stream, with the one call @libp2p/pnet makes: `xsalsa20(nonce, key)`
 * returns an object whose `update(input[, output])` XORs the next input.length bytes of the
 * key stream into `input` and returns the result.
 *
 * Why lashup ships this instead of the `xsalsa20` package (1.2.0) that @libp2p/pnet depends on
 * (package.json "overrides" puts it in its place): that package keeps every cipher's state in
 * one shared WASM memory and frees a state's slot only on `finalize()`, which pnet never calls,
 * so each connection leaks 128 bytes of it; once the leak outgrows the memory's first 640 KB,
 * the memory grows, every other live cipher's view of it goes stale and the next update of each
 * grows it again by its whole size, and within a few growths it passes the module's 64 MB limit:
 * the update throws inside the connection's data handler and the process dies. Measured here:
 * 5,107 connections (two ciphers each, 20 open at a time) into one process; the cluster
 * benchmark's 200-node formation crashed a worker this way. Here each cipher is a plain object
 * the garbage collector takes with its connection.
 *
 * The key stream comes from @noble/ciphers (audited, already in the tree through libp2p-noise),
 * 4 KB at a time from a block counter, and is XORed in here.
 */
import { xsalsa20 as xsalsa20Xor } from '@noble/ciphers/salsa.js';

/** Key stream made at a time: one call into @noble/ciphers (its own cost, mostly the nonce's
 * HSalsa20 step, is ~14 us) serves 4 KB of frames instead of one. */
const STREAM_BYTES = 4096;
const ZEROS = new Uint8Array(STREAM_BYTES);

class XSalsa20Stream {
  constructor(nonce, key) {
    if (!nonce || nonce.length < 24) throw new Error('nonce must be at least 24 bytes');
    if (!key || key.length < 32) throw new Error('key must be at least 32 bytes');
    this.nonce = Uint8Array.from(nonce.subarray(0, 24));
    this.key = Uint8Array.from(key.subarray(0, 32));
    this.stream = new Uint8Array(STREAM_BYTES);
    /** Bytes of `stream` used; all of it at first, so the first update makes some. */
    this.used = STREAM_BYTES;
    /** The 64-byte block the next stream starts at. */
    this.nextBlock = 0;
  }

  update(input, output) {
    if (!input) throw new Error('input must be Uint8Array or Buffer');
    const out = output ?? new Uint8Array(input.length);
    const stream = this.stream;
    for (let i = 0; i < input.length; ) {
      if (this.used === STREAM_BYTES) {
        xsalsa20Xor(this.key, this.nonce, ZEROS, stream, this.nextBlock);
        this.nextBlock += STREAM_BYTES / 64;
        this.used = 0;
      }
      const n = Math.min(input.length - i, STREAM_BYTES - this.used);
      for (let j = 0; j < n; j++) out[i + j] = input[i + j] ^ stream[this.used + j];
      i += n;
      this.used += n;
    }
    return out;
  }

  final() {
    this.key.fill(0);
    this.stream.fill(0);
  }

  finalize() {
    this.final();
  }
}

export default function xsalsa20(nonce, key) {
  return new XSalsa20Stream(nonce, key);
}
