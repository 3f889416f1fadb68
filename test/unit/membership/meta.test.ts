import t from 'tap';
import { decodeMeta, encodeMeta, MembershipError, MembershipErrorCode, type MemberMeta } from '../../../src/membership/index.js';
import { Packr } from 'msgpackr';

t.test('metadata round-trips in canonical form', async (t) => {
  const meta: MemberMeta = {
    role: 'agent',
    underlayIp: 'FD01:0B::0001',
    version: '0.1.0',
    peerId: '12D3KooWExample',
    addrs: ['/ip4/192.0.2.1/tcp/4001'],
    tags: { zone: 'b', rack: '7' },
  };
  const decoded = decodeMeta(encodeMeta(meta));
  t.same(decoded, { ...meta, underlayIp: 'fd01:b::1', tags: { rack: '7', zone: 'b' } });
  t.same(Object.keys(decoded.tags ?? {}), ['rack', 'zone'], 'tags sorted');
  t.same(encodeMeta(meta), encodeMeta({ ...meta, tags: { zone: 'b', rack: '7' } }), 'equal metadata, equal bytes');
  t.same(decodeMeta(encodeMeta({ role: 'master', underlayIp: '192.0.2.9', version: '1' })), { role: 'master', underlayIp: '192.0.2.9', version: '1' });
});

t.test('invalid metadata is a typed error naming the field', async (t) => {
  const base: MemberMeta = { role: 'agent', underlayIp: '192.0.2.1', version: '0.1.0' };
  const cases: [MemberMeta, RegExp][] = [
    [{ ...base, role: 'boss' as never }, /role/],
    [{ ...base, underlayIp: '192.0.2.256' }, /underlayIp/],
    [{ ...base, version: '' }, /version/],
    [{ ...base, addrs: Array.from({ length: 17 }, () => 'a') }, /addrs/],
    [{ ...base, tags: { k: 5 as never } }, /tags\.k/],
    [{ ...base, tags: { a: 'x'.repeat(200), b: 'x'.repeat(200), c: 'x'.repeat(200) } }, /above the limit of 512/],
  ];
  for (const [meta, pattern] of cases) {
    try {
      encodeMeta(meta);
      t.fail(`encoded ${JSON.stringify(meta)}`);
    } catch (err) {
      t.ok(err instanceof MembershipError);
      t.equal((err as MembershipError).code, MembershipErrorCode.InvalidMeta);
      t.match((err as Error).message, pattern);
    }
  }
});

t.test('decoding hostile metadata gives decode errors', async (t) => {
  const packr = new Packr({ useRecords: false });
  const cases: unknown[] = [
    'x',
    [2, 0, '192.0.2.1', 'v', null, [], []],
    [1, 5, '192.0.2.1', 'v', null, [], []],
    [1, 0, 'nope', 'v', null, [], []],
    [1, 0, '192.0.2.1', 'v', null, 'a', []],
    [1, 0, '192.0.2.1', 'v', null, [], ['odd']],
  ];
  for (const raw of cases) {
    t.throws(() => decodeMeta(packr.pack(raw)), { code: MembershipErrorCode.Decode }, JSON.stringify(raw));
  }
  t.throws(() => decodeMeta(new Uint8Array(600)), { code: MembershipErrorCode.Decode });
});

t.test("a master's Raft role and term travel in their own field, apart from the operators' tags", async (t) => {
  const master: MemberMeta = { role: 'master', underlayIp: '192.0.2.1', version: '0.1.0', tags: { raftRole: 'leader' }, raft: { role: 'follower', term: 7 } };
  const decoded = decodeMeta(encodeMeta(master));
  t.same(decoded.raft, { role: 'follower', term: 7 }, 'the typed field');
  t.same(decoded.tags, { raftRole: 'leader' }, 'an operator tag of that name is just a tag');
  for (const role of ['follower', 'precandidate', 'candidate', 'leader'] as const) t.equal(decodeMeta(encodeMeta({ ...master, raft: { role, term: 1 } })).raft?.role, role);
  t.throws(() => encodeMeta({ ...master, raft: { role: 'king' as 'leader', term: 1 } }), {
    code: MembershipErrorCode.InvalidMeta,
    message: /raft\.role = the string "king".*one of follower, precandidate, candidate, leader/,
  });
  t.throws(() => encodeMeta({ ...master, raft: { role: 'leader', term: -1 } }), { message: /raft\.term = .*-1.*non-negative integer/ });
  const packr = new Packr({ useRecords: false });
  const base = [1, 0, '192.0.2.1', '0.1.0', null, [], []];
  t.same(decodeMeta(packr.pack(base)).raft, undefined, 'seven items (metadata without the field) still decode');
  for (const bad of [[9, 1], [2], 'leader', [1, -3]]) t.throws(() => decodeMeta(packr.pack([...base, bad])), MembershipError, JSON.stringify(bad));
});
