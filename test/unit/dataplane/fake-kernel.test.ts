import t from 'tap';
import { FakeKernel, KernelError, type KernelEvent, type KernelOp, type KernelRoute } from '../../../src/dataplane/index.js';

const vxlan = { vni: 1024, port: 64000, localIp: '192.0.2.1', learning: false };

async function setup(): Promise<{ k: FakeKernel; vtep: number; events: KernelEvent[] }> {
  const k = new FakeKernel();
  const events: KernelEvent[] = [];
  k.subscribe((e) => events.push(e));
  const [err] = await k.execute([{ op: 'link.create', link: { name: 'vtep1024', kind: 'vxlan', mtu: 1420, vxlan } }]);
  t.equal(err, undefined);
  const vtep = (k.linkByName('vtep1024') as { ifindex: number }).ifindex;
  await new Promise((r) => setImmediate(r));
  return { k, vtep, events };
}

const errno = (results: (KernelError | undefined)[]): (string | undefined)[] => results.map((r) => r?.errno);

t.test('rejects what the kernel rejects', async (t) => {
  const { k, vtep } = await setup();
  const route = (over: Partial<KernelRoute>): KernelOp => ({
    op: 'route.replace',
    route: { family: 4, table: 254, dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', ifindex: vtep, protocol: 76, onlink: true, metric: 0, unicast: true, ...over },
  });
  t.same(errno(await k.execute([{ op: 'link.create', link: { name: 'vtep1024', kind: 'bridge' } }])), ['EEXIST'], 'duplicate link name');
  t.same(errno(await k.execute([{ op: 'link.create', link: { name: 'x'.repeat(16), kind: 'bridge' } }])), ['EINVAL'], 'name too long');
  t.same(errno(await k.execute([{ op: 'link.create', link: { name: 'vx', kind: 'vxlan' } }])), ['EINVAL'], 'vxlan without attributes');
  t.same(errno(await k.execute([{ op: 'link.create', link: { name: 've', kind: 'veth' } }])), ['EINVAL'], 'veth without peer');
  t.same(errno(await k.execute([route({})])), ['ENETDOWN'], 'on-link route through a down link');
  t.same(errno(await k.execute([{ op: 'link.set', ifindex: vtep, up: true }])), [undefined]);
  t.same(errno(await k.execute([route({ onlink: false })])), ['ENETUNREACH'], 'gateway not on-link');
  t.same(errno(await k.execute([{ op: 'addr.add', addr: { ifindex: vtep, family: 4, address: '44.128.0.1', prefixLen: 20 } }])), [undefined]);
  t.same(errno(await k.execute([{ op: 'addr.add', addr: { ifindex: vtep, family: 4, address: '44.128.0.1', prefixLen: 20 } }])), ['EEXIST'], 'duplicate address');
  t.same(errno(await k.execute([route({ onlink: false })])), [undefined], 'gateway on-link through the connected /20');
  t.same(errno(await k.execute([route({ gateway: 'fd01:a::2' })])), ['EINVAL'], 'gateway of the other family');
  t.same(errno(await k.execute([route({ ifindex: 999 })])), ['ENODEV']);
  t.same(
    errno(await k.execute([route({ dst: '9.0.2.0', prefixLen: 24, table: 254, metric: 7 }), { op: 'route.delete', route: { ...(route({}) as { route: KernelRoute }).route, metric: 9 } }])),
    [undefined, 'ESRCH'],
    'deleting a missing route',
  );
  t.same(errno(await k.execute([{ op: 'neigh.delete', neigh: { ifindex: vtep, family: 4, ip: '44.128.0.9', permanent: true } }])), ['ENOENT']);
  t.same(errno(await k.execute([{ op: 'neigh.replace', neigh: { ifindex: vtep, family: 6, ip: '44.128.0.9', mac: '70:b3:d5:80:00:09', permanent: true } }])), ['EINVAL']);
  t.same(errno(await k.execute([{ op: 'fdb.delete', fdb: { ifindex: vtep, mac: '70:b3:d5:80:00:09', dst: '192.0.2.9', permanent: true } }])), ['ENOENT']);
  t.same(errno(await k.execute([{ op: 'fdb.replace', fdb: { ifindex: 1, mac: '70:b3:d5:80:00:09', dst: '192.0.2.9', permanent: true } }])), ['EOPNOTSUPP'], 'FDB on a non-VXLAN link');
  t.same(errno(await k.execute([{ op: 'fdb.replace', fdb: { ifindex: vtep, mac: '70:b3:d5:80:00:09', permanent: true } }])), ['EINVAL'], 'FDB without destination');
  const rule = { family: 4 as const, priority: 100, table: 10, srcLen: 0, dstLen: 0, protocol: 76 };
  t.same(
    errno(
      await k.execute([
        { op: 'rule.add', rule },
        { op: 'rule.add', rule },
      ]),
    ),
    [undefined, 'EEXIST'],
  );
  t.same(
    errno(
      await k.execute([
        { op: 'rule.delete', rule },
        { op: 'rule.delete', rule },
      ]),
    ),
    [undefined, 'ENOENT'],
  );
  t.same(errno(await k.execute([{ op: 'link.set', ifindex: vtep, master: 1 }])), ['EINVAL'], 'master that is not a bridge');
  t.same(errno(await k.execute([{ op: 'link.set', ifindex: 1, learning: true }])), ['EINVAL'], 'learning on a non-VXLAN link');
  t.same(errno(await k.execute([{ op: 'addr.delete', addr: { ifindex: vtep, family: 4, address: '44.128.0.7', prefixLen: 20 } }])), ['EADDRNOTAVAIL']);
  t.same(errno(await k.execute([{ op: 'link.delete', ifindex: 999 }])), ['ENODEV']);
});

t.test('an injected failure hits exactly one matching operation, once', async (t) => {
  const { k, vtep } = await setup();
  k.failNext('link.set', 'EBUSY', (op) => op.op === 'link.set' && op.mtu === 1300);
  t.same(
    errno(
      await k.execute([
        { op: 'link.set', ifindex: vtep, mtu: 1400 },
        { op: 'link.set', ifindex: vtep, mtu: 1300 },
        { op: 'link.set', ifindex: vtep, mtu: 1300 },
      ]),
    ),
    [undefined, 'EBUSY', undefined],
  );
  t.equal(k.pendingFailures, 0);
  k.failNext('list', 'EINTR');
  await t.rejects(k.snapshot(), new KernelError('EINTR', 'list'));
  t.ok(await k.snapshot(), 'the next listing works');
});

t.test('notifications arrive after the acknowledgement; deleting a link drops its routes silently', async (t) => {
  const { k, vtep, events } = await setup();
  events.length = 0;
  await k.execute([{ op: 'link.set', ifindex: vtep, up: true }]);
  const pending = events.length;
  await new Promise((r) => setImmediate(r));
  t.equal(pending, 0, 'nothing delivered before the caller saw the result');
  t.equal(events.length, 1);
  await k.execute([
    { op: 'route.replace', route: { family: 4, table: 254, dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', ifindex: vtep, protocol: 76, onlink: true, metric: 0, unicast: true } },
    { op: 'neigh.replace', neigh: { ifindex: vtep, family: 4, ip: '44.128.0.2', mac: '70:b3:d5:80:00:02', permanent: true } },
  ]);
  await new Promise((r) => setImmediate(r));
  events.length = 0;
  await k.execute([{ op: 'link.delete', ifindex: vtep }]);
  await new Promise((r) => setImmediate(r));
  t.same(
    events.map((e) => e.type),
    ['neigh', 'link'],
    'a neighbour deletion and the link deletion, but no route deletion (as IPv4)',
  );
  t.equal(k.state().routes.filter((r) => r.protocol === 76).length, 0, 'the route is gone all the same');
  const vethErr = await k.execute([{ op: 'link.create', link: { name: 'veth0', kind: 'veth', peer: 'veth1' } }]);
  t.same(errno(vethErr), [undefined]);
  t.ok(k.linkByName('veth1'), 'a veth pair has both ends');
  await k.execute([{ op: 'link.delete', ifindex: (k.linkByName('veth0') as { ifindex: number }).ifindex }]);
  t.equal(k.linkByName('veth1'), undefined, 'deleting one end deletes the other');
  await k.close();
  await t.rejects(k.execute([]), new KernelError('EBADF', 'use of a closed fake kernel'));
});
