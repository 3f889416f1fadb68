import t from 'tap';
import { ORMap } from '../../../src/crdt/index.js';

const marker = (ts: number, actor: string) => ({ ts, actor });

/** A map of `n` LWW fields written by actor `a`. */
function mapOf(n: number): ORMap {
  const m = new ORMap();
  m.mutate('a', (x) => {
    for (let i = 0; i < n; i++) x.lww(`f${i}`).write(marker(i + 1, 'a'), { i });
  });
  return m;
}

t.test('previewJoin names the fields a join would change, with values before and after, and changes nothing', async (t) => {
  for (const size of [3, 40]) {
    const m = mapOf(size);
    const before = JSON.stringify(m.canonical());
    const other = m.clone();
    const write = other.mutate('b', (x) => x.lww('f1').write(marker(1000, 'b'), { i: 'new' }));
    t.same(m.previewJoin(write), [{ name: 'f1', before: { i: 1 }, after: { i: 'new' } }], `${size} fields: an overwrite`);
    const removal = other.mutate('b', (x) => x.remove('f2'));
    t.same(m.previewJoin(removal), [{ name: 'f2', before: { i: 2 }, after: undefined }], `${size} fields: a removal`);
    const added = new ORMap().mutate('c', (x) => x.lww('new').write(marker(5, 'c'), 'v'));
    t.same(m.previewJoin(added), [{ name: 'new', before: undefined, after: 'v' }], `${size} fields: a new field`);
    const stale = new ORMap().mutate('c', (x) => x.lww('f0').write(marker(0, 'c'), 'older'));
    t.same(m.previewJoin(stale), [], `${size} fields: a write that loses LWW changes nothing`);
    t.same(m.previewJoin(m.clone()), [], `${size} fields: joining itself changes nothing`);
    t.equal(JSON.stringify(m.canonical()), before, 'the map is untouched');
    // The preview agrees with a real join.
    const joined = m.clone();
    joined.join(write);
    t.same((joined.value() as Record<string, unknown>)['f1'], { i: 'new' });
  }
});
