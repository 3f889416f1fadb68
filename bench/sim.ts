/**
 * Simulator throughput: simulated events per second of wall time, for 1,000 and 10,000 nodes
 * exchanging packets through the in-memory transport (the path every protocol uses).
 *
 * Workload per node, gossip-like: every 200 ms (jittered start) send a 100-byte packet to 3
 * random peers; every receiver answers with a 40-byte ack. Links: 0.5–2 ms uniform latency, 1%
 * loss, 0.5% duplication, so every packet takes the full random path.
 */
import '../src/polyfills.js';
import { Simulation } from '../src/sim/index.js';
import { createSimTransports } from '../src/net/index.js';
import { round, summarize } from './lib/stats.js';
import type { Benchmark, BenchResult, Cell } from './lib/types.js';

interface Trial {
  events: number;
  wallMs: number;
  setupMs: number;
  packets: number;
  digest: string;
}

function trial(nodes: number, simulatedMs: number, seed: number): Trial {
  const setupStarted = performance.now();
  const sim = new Simulation({
    seed,
    network: {
      defaultLink: { latency: { kind: 'uniform', minMs: 0.5, maxMs: 2 }, lossProbability: 0.01, duplicateProbability: 0.005 },
    },
  });
  const addresses = Array.from({ length: nodes }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`);
  const payload = new Uint8Array(100);
  const ack = new Uint8Array(40);
  for (const address of addresses) {
    sim.network.addHost(address, (host) => {
      const { packets } = createSimTransports(host);
      packets.onPacket((packet) => {
        if (packet.data.byteLength === 100) packets.send(packet.from, ack);
      });
      const tick = (): void => {
        for (let k = 0; k < 3; k++) {
          let peer = addresses[host.rng.int(nodes)] as string;
          if (peer === address) peer = addresses[(host.id + 1) % nodes] as string;
          packets.send(peer, payload);
        }
        host.clock.setTimer(200, tick);
      };
      host.clock.setTimer(host.rng.next() * 200, tick);
    });
  }
  const setupMs = performance.now() - setupStarted;
  // Setup garbage (10,000 hosts' construction) is collected before timing, so the figure is the
  // event loop's own throughput; setup time is reported separately.
  collectGarbage();
  const before = sim.scheduler.eventsProcessed;
  const started = performance.now();
  sim.runFor(simulatedMs);
  const wallMs = performance.now() - started;
  return {
    events: sim.scheduler.eventsProcessed - before,
    wallMs,
    setupMs,
    packets: sim.network.totals().packetsReceived,
    digest: sim.traceDigest(),
  };
}

/** Frees the previous trial's simulation before timing the next (the runner passes --expose-gc). */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

const bench: Benchmark = {
  name: 'sim',
  description: 'simulated events per second of wall time (gossip-like packet exchange)',
  async run(ctx): Promise<BenchResult> {
    const configs = ctx.quick
      ? [
          { nodes: 1000, simulatedMs: 2000, trials: 2 },
          { nodes: 10000, simulatedMs: 1000, trials: 1 },
        ]
      : [
          { nodes: 1000, simulatedMs: 20000, trials: 5 },
          { nodes: 10000, simulatedMs: 5000, trials: 5 },
        ];
    const rows: Record<string, Cell>[] = [];
    const targets = [];
    for (const config of configs) {
      // Warm-up run so JIT compilation is not charged to the first trial.
      trial(config.nodes, 200, 999);
      const rates: number[] = [];
      let events = 0;
      let packets = 0;
      let wallMs = 0;
      const setupMs: number[] = [];
      for (let i = 0; i < config.trials; i++) {
        collectGarbage();
        const t = trial(config.nodes, config.simulatedMs, i + 1);
        rates.push(t.events / (t.wallMs / 1000));
        events += t.events;
        packets += t.packets;
        wallMs += t.wallMs;
        setupMs.push(t.setupMs);
        ctx.log(`nodes=${config.nodes} trial=${i + 1}: ${t.events} events in ${t.wallMs.toFixed(0)} ms, digest ${t.digest}`);
      }
      const dist = summarize(rates);
      rows.push({
        nodes: config.nodes,
        'sim s/trial': config.simulatedMs / 1000,
        trials: config.trials,
        'events/trial': Math.round(events / config.trials),
        'packets/trial': Math.round(packets / config.trials),
        'events/s min': Math.round(dist.min),
        'events/s p50': Math.round(dist.p50),
        'events/s max': Math.round(dist.max),
        'sim-time/wall': round((config.simulatedMs * config.trials) / wallMs),
        'setup ms p50': round(summarize(setupMs).p50),
      });
      targets.push({
        name: `events per second of wall time, ${config.nodes} nodes (p50 over ${config.trials} trials)`,
        target: '>= 1,000,000',
        measured: Math.round(dist.p50).toLocaleString('en-US'),
        met: dist.p50 >= 1_000_000,
      });
    }
    return {
      parameters: {
        configs,
        workload: 'every 200 ms each node sends a 100-byte packet to 3 random peers, each answered by a 40-byte ack',
        link: 'uniform 0.5-2 ms, 1% loss, 0.5% duplication',
      },
      rows,
      targets,
      notes: ['an event is one timer firing or one packet delivery'],
    };
  },
};

export default bench;
