/**
 * A running 64-bit digest of what happened in a simulation (two 32-bit FNV-style lanes).
 *
 * Determinism is checked by comparing digests: the same seed must give the same digest, bit for
 * bit. Only integers are mixed; times are mixed as whole nanoseconds so that float formatting
 * never enters the picture.
 */
export class TraceHasher {
  private lo = 0x811c9dc5;
  private hi = 0x050c5d1f;
  private mixed = 0;

  /** Number of values mixed so far. */
  get count(): number {
    return this.mixed;
  }

  mixInt(value: number): void {
    // Split into 32-bit halves so values above 2^32 (nanosecond times) still count in full.
    const low = value >>> 0;
    const high = Math.floor(value / 4294967296) >>> 0;
    this.mixWord(low);
    this.mixWord(high);
  }

  /** Mixes a time in milliseconds at nanosecond resolution. */
  mixTimeMs(timeMs: number): void {
    this.mixInt(Math.round(timeMs * 1e6));
  }

  mixString(text: string): void {
    this.mixWord(text.length);
    for (let i = 0; i < text.length; i++) this.mixWord(text.charCodeAt(i));
  }

  /** Mixes the length and up to `maxBytes` leading bytes of `data`, four bytes per word. */
  mixBytes(data: Uint8Array, maxBytes = 32): void {
    this.mixWord(data.byteLength);
    const n = Math.min(maxBytes, data.byteLength);
    let word = 0;
    for (let i = 0; i < n; i++) {
      word = (word << 8) | (data[i] as number);
      if ((i & 3) === 3) {
        this.mixWord(word);
        word = 0;
      }
    }
    if ((n & 3) !== 0) this.mixWord(word);
  }

  /** 16 hex digits. */
  digest(): string {
    return (this.hi >>> 0).toString(16).padStart(8, '0') + (this.lo >>> 0).toString(16).padStart(8, '0');
  }

  private mixWord(word: number): void {
    this.mixed++;
    this.lo = Math.imul(this.lo ^ word, 0x01000193);
    this.hi = Math.imul(this.hi ^ (word + (this.lo >>> 7)), 0x01000193) ^ (this.lo >>> 15);
  }
}
