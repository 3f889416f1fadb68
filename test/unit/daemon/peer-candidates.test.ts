import t from 'tap';
import { peerCandidates } from '../../../src/daemon/peers.js';
import type { MemberMeta } from '../../../src/membership/index.js';

const metas = new Map<number, MemberMeta>();
const meta = (bytes: Uint8Array): MemberMeta | undefined => metas.get(bytes[0] as number);
let nextId = 0;
const member = (name: string, state: 'alive' | 'suspect' | 'dead' | 'left', role: 'agent' | 'master' = 'agent', addrs: string[] = [`/ip4/10.0.0.1/tcp/1/p2p/12D3KooW${name}`]) => {
  const id = ++nextId;
  metas.set(id, { role, underlayIp: '10.0.0.1', version: '0.1.0', addrs });
  return { name, state, meta: Uint8Array.of(id) };
};

t.test('candidates: alive members with a libp2p address, and suspect members only while kept', async (t) => {
  const members = [
    member('self', 'alive'),
    member('a', 'alive'),
    member('m', 'alive', 'master'),
    member('kept-suspect', 'suspect'),
    member('other-suspect', 'suspect'),
    member('dead', 'dead'),
    member('left', 'left'),
    member('no-address', 'alive', 'agent', []),
    member('no-peer-id', 'alive', 'agent', ['/ip4/10.0.0.1/tcp/1']),
  ];
  const kept = new Set(['kept-suspect', 'dead', 'left']);
  const { candidates, addresses } = peerCandidates(members, 'self', meta, (name) => kept.has(name));
  t.same(candidates, [
    { name: 'a', mustKeep: false },
    { name: 'm', mustKeep: true },
    { name: 'kept-suspect', mustKeep: false },
  ]);
  t.same([...addresses.keys()], ['a', 'm', 'kept-suspect']);
  t.equal(addresses.get('kept-suspect'), '/ip4/10.0.0.1/tcp/1/p2p/12D3KooWkept-suspect');
});
