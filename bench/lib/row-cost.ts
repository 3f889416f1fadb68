/**
 * What signed rows cost per update (issue 17 item 3), measured on the code the daemon runs: an
 * agent signs its overlay entry (writer), and every other replica checks the delta before it
 * joins it (the store's admission: a preview of the join, the owner looked up, the signature
 * verified). The baseline is the same delta joined by a replica without the check, in the same
 * run. The overlay map holds one entry per node, as in a cluster of that size.
 */
import { PeerIdVerifier, signerFromSeed, type Signer } from '../../src/identity/index.js';
import { OwnedRowsAdmission, publishOverlayEntry } from '../../src/keyspace/index.js';
import { KvStore, kvConfig } from '../../src/kv/index.js';
import { Scheduler } from '../../src/sim/index.js';
import { summarize } from './stats.js';

export interface RowCost {
  /** Writer: signing one entry (µs). */
  signUs: { p50: number; p99: number };
  /** Replica: joining the delta with the admission check (µs). */
  checkedJoinUs: { p50: number; p99: number };
  /** Replica: joining the same delta without it (µs), the baseline. */
  plainJoinUs: { p50: number; p99: number };
  /** CPU per update over the whole cluster: one signature and N - 1 checks beyond the baseline (ms). */
  clusterCpuMsPerUpdate: number;
}

const vtepOf = (i: number): string => `44.128.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}`;

export function measureRowCost(nodes: number, updates = 300): RowCost {
  const scheduler = new Scheduler({ epochMs: Date.now() });
  const signers: Signer[] = Array.from({ length: nodes }, (_, i) => signerFromSeed(new Uint8Array(32).fill(0).map((_, j) => (i * 31 + j * 7) & 255)));
  const owners = new Map(signers.map((s, i) => [vtepOf(i), { agent: `a${i}`, peerId: s.identity }]));
  const outbox: Uint8Array[] = [];
  const writers = signers.map((_, i) => new KvStore({ actor: `a${i}`, clock: scheduler.clock(), config: kvConfig(), publish: (m) => outbox.push(m) }));
  const checked = new KvStore({ actor: 'checked', clock: scheduler.clock(), config: kvConfig() });
  const plain = new KvStore({ actor: 'plain', clock: scheduler.clock(), config: kvConfig() });
  checked.setAdmission(new OwnedRowsAdmission({ byVtep: (ip) => owners.get(ip), byAgent: () => undefined }, new PeerIdVerifier()));
  const entry = (i: number, n: number) => ({ agentIp: `10.${n & 255}.${(i >> 8) & 255}.${i & 255}`, vtepMac: '70:b3:d5:80:00:01', subnet: `9.${(i >> 8) & 255}.${i & 255}.0/24`, nodeId: `a${i}` });
  const deliver = (): void => {
    for (const m of outbox.splice(0)) {
      checked.receive(m);
      plain.receive(m);
    }
    scheduler.runFor(1);
  };
  for (let i = 0; i < nodes; i++) publishOverlayEntry(writers[i] as KvStore, 'dcos', vtepOf(i), entry(i, 0), signers[i]);
  deliver();
  const sign: number[] = [];
  const checkedJoin: number[] = [];
  const plainJoin: number[] = [];
  for (let u = 1; u <= updates; u++) {
    const i = (u * 7919) % nodes;
    let t0 = performance.now();
    publishOverlayEntry(writers[i] as KvStore, 'dcos', vtepOf(i), entry(i, u), signers[i]);
    sign.push((performance.now() - t0) * 1000);
    const message = outbox.splice(0)[0] as Uint8Array;
    // One replica at a time, so each timing holds one delta's join and nothing else.
    checked.receive(message);
    t0 = performance.now();
    scheduler.runFor(0);
    checkedJoin.push((performance.now() - t0) * 1000);
    plain.receive(message);
    t0 = performance.now();
    scheduler.runFor(0);
    plainJoin.push((performance.now() - t0) * 1000);
    scheduler.runFor(1);
  }
  if (checked.stats.writesRefused > 0) throw new Error(`the measurement's own writes were refused (${checked.stats.writesRefused})`);
  const s = summarize(sign.slice(10));
  const c = summarize(checkedJoin.slice(10));
  const p = summarize(plainJoin.slice(10));
  return {
    signUs: { p50: s.p50, p99: s.p99 },
    checkedJoinUs: { p50: c.p50, p99: c.p99 },
    plainJoinUs: { p50: p.p50, p99: p.p99 },
    clusterCpuMsPerUpdate: (s.mean + (nodes - 1) * Math.max(0, c.mean - p.mean)) / 1000,
  };
}
