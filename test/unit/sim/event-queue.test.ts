import t from 'tap';
import fc from 'fast-check';
import { EventQueue } from '../../../src/sim/index.js';

t.test('events come out in (time, insertion) order for any insertion order', async (_t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), (times) => {
      const queue = new EventQueue(2); // tiny capacity: growth is exercised too
      const out: [number, number][] = [];
      times.forEach((time, index) => {
        queue.push(time, () => out.push([time, index]));
      });
      while (queue.size > 0) {
        const peek = queue.peekTime();
        queue.popAndRun();
        if (out[out.length - 1]?.[0] !== peek) return false;
      }
      const expected = times.map((time, index) => [time, index] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      return JSON.stringify(out) === JSON.stringify(expected);
    }),
    { numRuns: 300 },
  );
});

t.test('an event may push events while it runs; the argument is passed through', async (t) => {
  const queue = new EventQueue();
  const seen: string[] = [];
  queue.push(
    1,
    (arg) => {
      seen.push(String(arg));
      queue.push(1, () => seen.push('pushed-at-same-time'));
      queue.push(0.5, () => seen.push('pushed-earlier'));
    },
    'first',
  );
  queue.push(2, () => seen.push('second'));
  while (queue.popAndRun()) {
    /* drain */
  }
  t.same(seen, ['first', 'pushed-earlier', 'pushed-at-same-time', 'second']);
  t.equal(queue.peekTime(), Infinity);
  t.equal(queue.popAndRun(), false);
});

t.test('clear empties the queue', async (t) => {
  const queue = new EventQueue();
  queue.push(1, () => t.fail('cleared events must not run'));
  queue.push(2, () => t.fail('cleared events must not run'));
  queue.clear();
  t.equal(queue.size, 0);
  t.equal(queue.popAndRun(), false);
});
