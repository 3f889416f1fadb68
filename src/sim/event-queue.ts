/**
 * A min-priority queue of events ordered by (time, sequence).
 *
 * Ties in time are broken by insertion sequence, so two events scheduled for the same instant
 * always run in the order they were scheduled: this is what makes a simulation deterministic.
 *
 * Layout: a binary heap over parallel arrays (times in a Float64Array, sequence numbers in a
 * Float64Array, payloads in a plain array). Compared with a heap of `{time, seq, fn}` objects this
 * avoids one allocation per event and keeps the comparisons on unboxed doubles; it is what lets
 * the simulator pass a million events per second with tens of thousands pending.
 */

/** An event: a function and one optional argument (passing the argument separately avoids a closure per event). */
export type EventFn = (arg: unknown) => void;

export class EventQueue {
  private times: Float64Array;
  private seqs: Float64Array;
  private fns: (EventFn | undefined)[];
  private args: unknown[];
  private count = 0;
  private nextSeq = 0;

  constructor(initialCapacity = 1024) {
    this.times = new Float64Array(initialCapacity);
    this.seqs = new Float64Array(initialCapacity);
    this.fns = new Array<EventFn | undefined>(initialCapacity);
    this.args = new Array<unknown>(initialCapacity);
  }

  get size(): number {
    return this.count;
  }

  /** Time of the earliest event; `Infinity` when empty. */
  peekTime(): number {
    return this.count === 0 ? Infinity : (this.times[0] as number);
  }

  /** Adds an event; returns its sequence number (unique, increasing). */
  push(time: number, fn: EventFn, arg?: unknown): number {
    if (this.count === this.times.length) this.grow();
    const seq = this.nextSeq++;
    let i = this.count++;
    const times = this.times;
    const seqs = this.seqs;
    const fns = this.fns;
    const args = this.args;
    // Sift up: move parents down until the slot for the new event is found.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent] as number;
      if (pt < time || (pt === time && (seqs[parent] as number) < seq)) break;
      times[i] = pt;
      seqs[i] = seqs[parent] as number;
      fns[i] = fns[parent];
      args[i] = args[parent];
      i = parent;
    }
    times[i] = time;
    seqs[i] = seq;
    fns[i] = fn;
    args[i] = arg;
    return seq;
  }

  /**
   * Removes the earliest event and runs it, returning false when the queue was empty. The
   * caller reads the event's time with `peekTime()` first. The event is removed before it runs,
   * so it may push new events.
   */
  popAndRun(): boolean {
    if (this.count === 0) return false;
    const fn = this.fns[0] as EventFn;
    const arg = this.args[0];
    this.removeTop();
    fn(arg);
    return true;
  }

  private removeTop(): void {
    const times = this.times;
    const seqs = this.seqs;
    const fns = this.fns;
    const args = this.args;
    const last = --this.count;
    if (last > 0) {
      const t = times[last] as number;
      const s = seqs[last] as number;
      const f = fns[last];
      const a = args[last];
      let i = 0;
      const half = last >> 1;
      // Sift down the former last element from the root.
      while (i < half) {
        let child = 2 * i + 1;
        const right = child + 1;
        let ct = times[child] as number;
        if (right < last) {
          const rt = times[right] as number;
          if (rt < ct || (rt === ct && (seqs[right] as number) < (seqs[child] as number))) {
            child = right;
            ct = rt;
          }
        }
        if (t < ct || (t === ct && s < (seqs[child] as number))) break;
        times[i] = ct;
        seqs[i] = seqs[child] as number;
        fns[i] = fns[child];
        args[i] = args[child];
        i = child;
      }
      times[i] = t;
      seqs[i] = s;
      fns[i] = f;
      args[i] = a;
    }
    // Release references so the garbage collector can take them.
    fns[last] = undefined;
    args[last] = undefined;
  }

  clear(): void {
    this.fns.fill(undefined, 0, this.count);
    this.args.fill(undefined, 0, this.count);
    this.count = 0;
  }

  private grow(): void {
    const capacity = this.times.length * 2;
    const times = new Float64Array(capacity);
    times.set(this.times);
    const seqs = new Float64Array(capacity);
    seqs.set(this.seqs);
    this.times = times;
    this.seqs = seqs;
    this.fns.length = capacity;
    this.args.length = capacity;
  }
}
