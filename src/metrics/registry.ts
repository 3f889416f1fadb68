/**
 * The daemon's metrics: its components' stats described by the catalog, plus what prom-client
 * (the Prometheus project's Node client) measures itself: process and Node.js metrics (CPU,
 * memory, file descriptors, event-loop lag, garbage collection) and the histograms that a
 * stats object cannot hold (dataplane apply time, store propagation delay).
 */
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { renderExposition, type Exposition } from './exposition.js';

/**
 * How often prom-client samples the event loop's lag (the nodejs_eventloop_lag_* gauges), in ms.
 * Its default, 10 ms, is a timer waking the process 100 times a second: on this machine (2 cores,
 * a virtual machine) that alone cost a bare Node process 5.2 ms of CPU per second (0.19 without
 * it, 0.74 at 100 ms); the idle agents of a 3 + 16 namespace cluster went from about 6.2 to
 * 3.8 ms/s each with 100 ms (20 s after formation, over 30 s). At 100 ms a stall of 100 ms or
 * more (what delays probes, whose timeout is 500 ms on a LAN) is always seen; shorter ones are
 * seen in proportion to their length.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

export class DaemonMetrics {
  private readonly registry = new Registry();
  /** Seconds per reconciler apply (listing, planning and kernel operations). */
  readonly dataplaneApplySeconds: Histogram;
  /**
   * Seconds from a store delta's publication on its origin node to its application here,
   * measured by wall clocks (clock skew between the nodes is included).
   */
  readonly kvPropagationSeconds: Histogram;
  /** `component.field` of stats fields found undocumented at the last render. */
  undocumented: string[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // prom-client names these gauges with `_total`, which Prometheus reserves for counters
    // (`promtool check metrics` flags each); their unsuffixed twins carry the same numbers.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    this.dataplaneApplySeconds = new Histogram({
      name: 'lashup_dataplane_apply_duration_seconds',
      help: 'Duration of reconciler applies (listing, planning and kernel operations).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.kvPropagationSeconds = new Histogram({
      name: 'lashup_kv_propagation_delay_seconds',
      help: 'Time from a store delta published on its origin node to its application on this node (wall clocks; includes clock skew).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
  }

  /** The propagation histogram's cumulative buckets (`le` in seconds, +Inf last), for the status page. */
  async propagationBuckets(): Promise<{ le: number; count: number }[]> {
    const { values } = await this.kvPropagationSeconds.get();
    return values
      .filter((v) => v.metricName === 'lashup_kv_propagation_delay_seconds_bucket')
      .map((v) => ({ le: v.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels['le']), count: v.value }))
      .sort((a, b) => a.le - b.le);
  }

  /** The Content-Type of `render`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The whole exposition: components' stats, then prom-client's own metrics. */
  async render(components: Record<string, object | undefined>): Promise<string> {
    const own: Exposition = renderExposition(components);
    this.undocumented = own.undocumented;
    return own.text + (await this.registry.metrics());
  }
}
