/**
 * The VIP benchmark's load, run inside a client container's namespace:
 * `node vip-load.js '{"host","port","concurrency","durationMs"}'`. Keeps `concurrency` TCP
 * connections in progress for `durationMs`: each connects, reads the backend's first line and
 * is reset (no TIME_WAIT left behind, so a run of tens of thousands of connections does not run
 * out of local ports). Prints one JSON line: completed connections, errors, and connect-to-answer
 * latency p50/p99 in ms. Bounded: stops starting connections at durationMs and gives each one
 * 3 s.
 */
import { connect } from 'node:net';

const o = JSON.parse(process.argv[2] as string) as { host: string; port: number; concurrency: number; durationMs: number };
const latencies: number[] = [];
let errors = 0;
const endAt = performance.now() + o.durationMs;

function one(): Promise<void> {
  return new Promise((resolve) => {
    const started = performance.now();
    const c = connect(o.port, o.host);
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      if (ok) latencies.push(performance.now() - started);
      else errors++;
      c.resetAndDestroy();
      resolve();
    };
    c.setTimeout(3000, () => finish(false));
    c.once('data', () => finish(true));
    c.on('error', () => finish(false));
    c.on('close', () => finish(false));
  });
}

async function worker(): Promise<void> {
  while (performance.now() < endAt) await one();
}

await Promise.all(Array.from({ length: o.concurrency }, () => worker()));
latencies.sort((a, b) => a - b);
const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
process.stdout.write(`${JSON.stringify({ completed: latencies.length, errors, p50Ms: at(0.5), p99Ms: at(0.99) })}\n`);
