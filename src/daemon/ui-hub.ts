/**
 * What the status page (/ui) shows, assembled from the API's own read-only views, and the
 * stream that keeps it live (/ui/events, server-sent events). The hub ticks once a second only
 * while a page is open: a node nobody looks at spends nothing on it.
 *
 * The store propagation chart is derived from the `lashup_kv_propagation_delay_seconds`
 * histogram: each tick takes the buckets' growth since the previous tick and estimates that
 * second's p50 and p99 the way Prometheus' histogram_quantile does (linear within a bucket), so
 * the page and a Prometheus graph of the same metric agree.
 */

/** One bucket of a cumulative histogram: observations at or below `le` seconds. */
export interface HistogramBucket {
  le: number;
  count: number;
}

/** One second of the propagation chart. */
export interface PropagationPoint {
  /** Wall-clock time of the tick, ms since the epoch. */
  atMs: number;
  /** Store deltas applied in that second. */
  deltas: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

/**
 * The q-quantile (0-1) of the observations counted in cumulative `buckets` (ascending `le`, the
 * last +Inf), interpolated within the bucket it falls in; null without observations. Values past
 * the last finite bound are reported as that bound (as histogram_quantile does).
 */
export function bucketQuantile(buckets: readonly HistogramBucket[], q: number): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return previousLe;
      const inBucket = b.count - previousCount;
      return inBucket <= 0 ? b.le : previousLe + (b.le - previousLe) * ((rank - previousCount) / inBucket);
    }
    previousLe = b.le;
    previousCount = b.count;
  }
  return previousLe;
}

/** The growth of cumulative `now` over `before` (same bounds); a counter reset counts from zero. */
export function bucketGrowth(before: readonly HistogramBucket[] | undefined, now: readonly HistogramBucket[]): HistogramBucket[] {
  const reset = before === undefined || before.length !== now.length || now.some((b, i) => b.count < (before[i]?.count ?? 0));
  return now.map((b, i) => ({ le: b.le, count: reset ? b.count : b.count - (before?.[i]?.count ?? 0) }));
}

export interface UiHubOptions {
  /** The page's state now (the API's views, assembled); errors are shown on the page. */
  state: () => Promise<Record<string, unknown>>;
  /** The propagation histogram's cumulative buckets now. */
  propagation: () => Promise<HistogramBucket[]>;
  /** Wall clock, ms. */
  nowMs?: () => number;
  /** Seconds of history the chart keeps (default 120). */
  historyPoints?: number;
  /** Tick interval, ms (default 1000). */
  intervalMs?: number;
}

type Listener = (event: string, data: unknown) => void;

export class UiHub {
  private readonly listeners = new Set<Listener>();
  private readonly history: PropagationPoint[] = [];
  private lastBuckets: HistogramBucket[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** Ticks that failed to assemble the state (shown on the page, kept for tests). */
  failures = 0;

  constructor(private readonly options: UiHubOptions) {}

  /** The state with the chart's history: the page's first paint and GET /ui/state. */
  async snapshot(): Promise<Record<string, unknown>> {
    return { ...(await this.options.state()), propagation: [...this.history] };
  }

  /** Adds a page; the first one starts the ticks. Returns the unsubscribe. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.timer === undefined) {
      this.timer = setInterval(() => void this.tick(), this.options.intervalMs ?? 1000);
      this.timer.unref();
    }
    void this.sendTo(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.lastBuckets = undefined;
  }

  private async sendTo(listener: Listener): Promise<void> {
    const [event, data] = await this.message();
    listener(event, data);
  }

  /** The `state` event, or a `problem` event (counted) when the state could not be assembled. */
  private async message(): Promise<[string, unknown]> {
    try {
      return ['state', await this.snapshot()];
    } catch (err) {
      this.failures++;
      return ['problem', { message: err instanceof Error ? err.message : String(err) }];
    }
  }

  /** Pages open now. */
  get pages(): number {
    return this.listeners.size;
  }

  /** One second: a chart point from the histogram's growth, then the state to every page. */
  async tick(): Promise<void> {
    // A slow state (a busy event loop) must not pile ticks up.
    if (this.ticking) return;
    this.ticking = true;
    try {
      const buckets = await this.options.propagation();
      if (this.lastBuckets !== undefined) {
        const growth = bucketGrowth(this.lastBuckets, buckets);
        const p50 = bucketQuantile(growth, 0.5);
        const p99 = bucketQuantile(growth, 0.99);
        this.history.push({ atMs: (this.options.nowMs ?? Date.now)(), deltas: growth.at(-1)?.count ?? 0, p50Ms: p50 === null ? null : p50 * 1000, p99Ms: p99 === null ? null : p99 * 1000 });
        const keep = this.options.historyPoints ?? 120;
        if (this.history.length > keep) this.history.splice(0, this.history.length - keep);
      }
      this.lastBuckets = buckets;
      const [event, data] = await this.message();
      for (const listener of [...this.listeners]) listener(event, data);
    } finally {
      this.ticking = false;
    }
  }
}
