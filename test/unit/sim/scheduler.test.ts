import t from 'tap';
import { Scheduler, ScopedClock } from '../../../src/sim/index.js';

t.test('timers fire in time order, ties in scheduling order, at their virtual time', async (t) => {
  const s = new Scheduler();
  const clock = s.clock();
  const fired: [string, number][] = [];
  clock.setTimer(30, () => fired.push(['c', clock.nowMs()]));
  clock.setTimer(10, () => fired.push(['a', clock.nowMs()]));
  clock.setTimer(20, () => fired.push(['b1', clock.nowMs()]));
  clock.setTimer(20, () => fired.push(['b2', clock.nowMs()]));
  clock.setTimer(-4, () => fired.push(['now', clock.nowMs()]));
  t.equal(s.runFor(25), 4);
  t.same(fired, [
    ['now', 0],
    ['a', 10],
    ['b1', 20],
    ['b2', 20],
  ]);
  t.equal(s.nowMs(), 25, 'runFor advances to the end of the window');
  s.runFor(100);
  t.same(fired.at(-1), ['c', 30]);
  t.equal(s.eventsProcessed, 5);
});

t.test('a cancelled timer never runs; cancelling twice or after firing is harmless', async (t) => {
  const s = new Scheduler();
  let ran = 0;
  const a = s.setTimer(5, () => ran++);
  const b = s.setTimer(6, () => ran++);
  a.cancel();
  a.cancel();
  s.runFor(10);
  b.cancel();
  t.equal(ran, 1);
});

t.test('at() and after() clamp the past to now; wall time follows the epoch', async (t) => {
  const s = new Scheduler({ epochMs: 1000 });
  s.runFor(50);
  const order: string[] = [];
  s.at(10, () => order.push(`at:${s.nowMs()}`));
  s.after(-1, () => order.push(`after:${s.nowMs()}`));
  s.atWith(60, (x: string) => order.push(`${x}:${s.nowMs()}`), 'atWith');
  s.runFor(20);
  t.same(order, ['at:50', 'after:50', 'atWith:60']);
  t.equal(s.wallMs(), 1070);
  t.equal(s.clock().wallMs(), 1070);
});

t.test('run limits stop runaway loops', async (t) => {
  const s = new Scheduler();
  const loop = (): void => s.after(1, loop);
  loop();
  t.equal(s.runUntilIdle({ maxEvents: 100 }), 100);
  t.equal(s.pending, 1);
  t.equal(s.runFor(1000, { maxEvents: 10 }), 10);
  t.ok(s.nowMs() < 1000, 'time stops where the limit cut the run');
  const quiet = new Scheduler();
  quiet.after(1, () => undefined);
  t.equal(quiet.runUntilIdle({ maxEvents: 10 }), 1);
});

t.test('runUntilCondition stops as soon as the condition holds, or at the deadline', async (t) => {
  const s = new Scheduler();
  let count = 0;
  const tick = (): void => {
    count++;
    s.after(10, tick);
  };
  tick();
  t.equal(
    s.runUntilCondition(() => count >= 5, 1000),
    true,
  );
  t.equal(s.nowMs(), 40);
  t.equal(
    s.runUntilCondition(() => count >= 1000, 100),
    false,
  );
  t.equal(s.nowMs(), 140);
  t.equal(
    s.runUntilCondition(() => false, 1000, { maxEvents: 3 }),
    false,
  );
  const idle = new Scheduler();
  t.equal(
    idle.runUntilCondition(() => false, 500),
    false,
  );
  t.equal(idle.nowMs(), 500, 'an idle scheduler jumps to the deadline');
});

t.test('ScopedClock: cancelAll kills pending timers and refuses new ones', async (t) => {
  const s = new Scheduler();
  const scope = new ScopedClock(s);
  const ran: number[] = [];
  scope.setTimer(5, () => ran.push(5));
  const cancelled = scope.setTimer(6, () => ran.push(6));
  scope.setTimer(20, () => ran.push(20));
  cancelled.cancel();
  t.equal(scope.pendingTimers, 2);
  s.runFor(10);
  t.same(ran, [5]);
  t.equal(scope.pendingTimers, 1);
  scope.cancelAll();
  t.equal(scope.pendingTimers, 0);
  t.equal(scope.isClosed, true);
  scope.setTimer(1, () => ran.push(1)).cancel();
  s.runFor(100);
  t.same(ran, [5], 'nothing ran after cancelAll');
  t.equal(scope.wallMs(), s.wallMs());
  t.equal(scope.nowMs(), s.nowMs());
});
