import t from 'tap';
import { MasterIdentities } from '../../../src/daemon/master-identities.js';
import { MemoryFs } from '../../../src/testing/index.js';

t.test('master identities: pinned at first contact, kept across restarts, other identities refused', async (t) => {
  const fs = new MemoryFs();
  const make = () => new MasterIdentities({ masters: ['m1', 'm2'], path: 'data/master-ids.json', fs });
  const ids = make();
  t.notOk(ids.accept('a1', 'peer-x'), 'a name that is not a master is never a master');
  t.ok(ids.accept('m1', 'peer-1'), 'first contact pins');
  t.ok(ids.accept('m1', 'peer-1'), 'the pinned identity is accepted');
  t.notOk(ids.accept('m1', 'peer-evil'), 'another identity under the name is refused');
  t.notOk(ids.accept('m1', 'peer-evil'), 'every time');
  t.notOk(ids.accept('m2', ''), 'an empty identity is refused');
  t.same(ids.stats, { pinned: 1, mismatches: 2 });
  ids.pinSelf('m2', 'peer-2');
  const again = make();
  t.equal(again.pinned('m1'), 'peer-1', 'pins survive a restart');
  t.equal(again.pinned('m2'), 'peer-2');
  again.pinSelf('m2', 'peer-2b');
  t.equal(again.pinned('m2'), 'peer-2b', "a master's own key wins over an older pin of its name");
  again.pinSelf('a1', 'peer-a');
  t.equal(again.pinned('a1'), undefined, 'only masters are pinned');
  fs.write('data/master-ids.json', new TextEncoder().encode('{not json'));
  t.equal(make().pinned('m1'), undefined, 'an unreadable file starts over');
});
