import t from 'tap';
import { InboundGate } from '../../../src/net/index.js';

function gate(members: string[] = []) {
  let now = 0;
  const g = new InboundGate({ perHostPending: 2, strangerPending: 3, totalPending: 5, maxPendingMs: 6000, nowMs: () => now, isMemberHost: (h) => members.includes(h) });
  return { g, advance: (ms: number) => (now += ms) };
}

t.test('inbound gate: per-host, stranger and total limits; members are not held to the stranger limits', async (t) => {
  const { g } = gate(['10.0.0.9']);
  t.ok(g.admit('10.0.0.1'));
  t.ok(g.admit('10.0.0.1'));
  t.equal(g.admit('10.0.0.1'), undefined, 'a third pending connection from one stranger host is refused');
  t.ok(g.admit('10.0.0.2'));
  t.equal(g.admit('10.0.0.3'), undefined, 'strangers together hold at most 3');
  t.ok(g.admit('10.0.0.9'), 'a member host is still admitted');
  t.ok(g.admit('10.0.0.9'));
  t.equal(g.admit('10.0.0.9'), undefined, 'but everyone together holds at most 5');
  t.match(g.stats, { admitted: 5, refusedPerHost: 1, refusedStrangers: 1, refusedBusy: 1, pending: 5 });
});

t.test('inbound gate: settling frees the slot once; tickets never settled are reclaimed after maxPendingMs', async (t) => {
  const { g, advance } = gate();
  const a = g.admit('10.0.0.1');
  const b = g.admit('10.0.0.2');
  const c = g.admit('10.0.0.3');
  t.ok(a && b && c);
  t.equal(g.admit('10.0.0.4'), undefined, 'stranger slots full');
  if (a !== undefined) {
    g.settle(a);
    g.settle(a);
  }
  t.equal(g.stats.pending, 2, 'settling twice frees one slot');
  t.ok(g.admit('10.0.0.4'), 'the freed slot is used');
  // b, c and the new one never settle (their close event was lost): after maxPendingMs the gate
  // takes the slots back instead of refusing every stranger for good.
  advance(5999);
  t.equal(g.admit('10.0.0.5'), undefined, 'not before maxPendingMs');
  advance(1);
  t.ok(g.admit('10.0.0.5'), 'reclaimed after maxPendingMs');
  t.equal(g.stats.expired, 3);
  t.equal(g.stats.pending, 1);
  if (b !== undefined) g.settle(b);
  t.equal(g.stats.pending, 1, 'settling a reclaimed ticket later changes nothing');
});
