import t from 'tap';

t.test('Promise.withResolvers is defined before tests run', async (t) => {
  const p = (Promise as unknown as { withResolvers: <T>() => { promise: Promise<T>; resolve: (v: T) => void } }).withResolvers<number>();
  p.resolve(42);
  t.equal(await p.promise, 42);
});
