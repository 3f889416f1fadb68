import t from 'tap';
import { Backoff, SeededRng } from '../../../src/common/index.js';

t.test('doubles from initialMs up to maxMs; reset starts again', async (t) => {
  const b = new Backoff({ initialMs: 200, maxMs: 1000 });
  t.same([b.next(), b.next(), b.next(), b.next(), b.next()], [200, 400, 800, 1000, 1000]);
  t.equal(b.attempts, 5);
  b.reset();
  t.equal(b.currentMs, 200);
  t.equal(b.next(), 200);
});

t.test('a spread draws each delay around its base, deterministically by seed', async (t) => {
  const draw = (seed: number): number[] => {
    const b = new Backoff({ initialMs: 1000, maxMs: 4000, spread: 1, rng: new SeededRng(seed) });
    return [b.next(), b.next(), b.next(), b.next()];
  };
  const bases = [1000, 2000, 4000, 4000];
  const all = Array.from({ length: 200 }, (_, i) => draw(i + 1));
  const outside = all.flatMap((delays) => delays.filter((d, i) => d < (bases[i] as number) / 2 || d >= ((bases[i] as number) * 3) / 2));
  t.same(outside, [], 'every delay within [d/2, 3d/2) of its base');
  t.same(draw(7), draw(7), 'same seed, same delays');
  t.ok(new Set(all.map((d) => d[0])).size > 50, 'first delays are spread');
});

t.test('bad settings are refused', async (t) => {
  t.throws(() => new Backoff({ initialMs: 0, maxMs: 10 }), RangeError);
  t.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), /expected 0 < initialMs <= maxMs/);
  t.throws(() => new Backoff({ initialMs: 10, maxMs: 50, spread: 0.5 }), /with an rng/);
  t.throws(() => new Backoff({ initialMs: 10, maxMs: 50, spread: 3, rng: new SeededRng(1) }), /expected 0 to 2/);
});
