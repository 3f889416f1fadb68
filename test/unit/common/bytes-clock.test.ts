import t from 'tap';
import fc from 'fast-check';
import { copyBytes, RealClock } from '../../../src/common/index.js';

t.test('copyBytes copies exactly and shares nothing with its input', async (_t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 6000 }), (data) => {
      const copy = copyBytes(data);
      if (copy.byteLength !== data.byteLength) return false;
      for (let i = 0; i < data.length; i++) if (copy[i] !== data[i]) return false;
      if (data.length > 0) {
        data[0] = ((data[0] as number) + 1) & 255;
        if (copy[0] === data[0]) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
});

t.test('copies from one slab never overlap', async (t) => {
  const copies: Uint8Array[] = [];
  for (let i = 0; i < 2000; i++) copies.push(copyBytes(new Uint8Array(33).fill(i & 255)));
  copies.forEach((c, i) => {
    if (!c.every((b) => b === (i & 255))) t.fail(`copy ${i} was overwritten`);
  });
  t.pass('2000 copies across slab boundaries are intact');
});

t.test('RealClock: monotonic time, wall time, timers that fire and that cancel', async (t) => {
  const clock = new RealClock();
  const a = clock.nowMs();
  const b = clock.nowMs();
  t.ok(b >= a);
  t.ok(Math.abs(clock.wallMs() - Date.now()) < 1000);
  const fired = await new Promise<boolean>((resolve) => {
    const cancelled = clock.setTimer(1, () => resolve(false));
    cancelled.cancel();
    clock.setTimer(2, () => resolve(true));
  });
  t.equal(fired, true, 'the cancelled timer never ran, the other did');
  // An unref'd timer does not hold the process open, so a ref'd one holds it while we wait.
  const hold = clock.setTimer(10_000, () => undefined);
  const unref = new RealClock(true);
  await new Promise<void>((resolve) => unref.setTimer(-5, resolve));
  hold.cancel();
  t.pass('a negative delay runs at once on an unref clock');
});
