import { ifla, rt } from 'netlink';
import t from 'tap';
import { decodeEvent, encodeHotInto, encodeOp, frame, HOT_MAX_BYTES, NLM_F, RTM } from '../../../src/dataplane/netlink-codec.js';
import type { KernelEvent, KernelOp } from '../../../src/dataplane/index.js';

const vxlan = { vni: 1024, port: 64000, localIp: '192.0.2.1', learning: false };

t.test('each replace and add encodes to a message that decodes back to the same object', async (t) => {
  const cases: [KernelOp, KernelEvent][] = [
    [
      { op: 'route.replace', route: { family: 4, table: 254, dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', ifindex: 5, protocol: 76, onlink: true, metric: 0, unicast: true } },
      { type: 'route', deleted: false, route: { family: 4, table: 254, dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', ifindex: 5, protocol: 76, onlink: true, metric: 0, unicast: true } },
    ],
    [
      { op: 'route.replace', route: { family: 6, table: 1000, dst: 'fd01:b:0:0:2::', prefixLen: 80, gateway: 'fd01:a::2', ifindex: 5, protocol: 76, onlink: false, metric: 1024, unicast: true } },
      {
        type: 'route',
        deleted: false,
        route: { family: 6, table: 1000, dst: 'fd01:b:0:0:2::', prefixLen: 80, gateway: 'fd01:a::2', ifindex: 5, protocol: 76, onlink: false, metric: 1024, unicast: true },
      },
    ],
    [
      { op: 'neigh.replace', neigh: { ifindex: 5, family: 4, ip: '44.128.0.2', mac: '70:b3:d5:80:00:02', permanent: true } },
      { type: 'neigh', deleted: false, neigh: { ifindex: 5, family: 4, ip: '44.128.0.2', mac: '70:b3:d5:80:00:02', permanent: true } },
    ],
    [
      { op: 'fdb.replace', fdb: { ifindex: 5, mac: '70:b3:d5:80:00:02', dst: '192.0.2.2', permanent: true } },
      { type: 'fdb', deleted: false, fdb: { ifindex: 5, mac: '70:b3:d5:80:00:02', dst: '192.0.2.2', permanent: true } },
    ],
    [
      { op: 'addr.add', addr: { ifindex: 5, family: 4, address: '44.128.0.1', prefixLen: 20 } },
      { type: 'addr', deleted: false, addr: { ifindex: 5, family: 4, address: '44.128.0.1', prefixLen: 20 } },
    ],
    [
      { op: 'addr.add', addr: { ifindex: 5, family: 6, address: 'fd01:a::1', prefixLen: 64 } },
      { type: 'addr', deleted: false, addr: { ifindex: 5, family: 6, address: 'fd01:a::1', prefixLen: 64 } },
    ],
    [
      { op: 'rule.add', rule: { family: 4, priority: 100, table: 300, src: '9.0.1.0', srcLen: 24, dstLen: 0, fwmark: 7, protocol: 76 } },
      { type: 'rule', deleted: false, rule: { family: 4, priority: 100, table: 300, src: '9.0.1.0', srcLen: 24, dstLen: 0, fwmark: 7, protocol: 76 } },
    ],
  ];
  for (const [op, event] of cases) {
    const encoded = encodeOp(op);
    t.same(decodeEvent(encoded.type, encoded.payload), event, op.op);
  }
});

t.test('an IPv6 address is added without duplicate address detection (usable before its link has carrier)', async (t) => {
  const parse = (op: KernelOp): rt.AddressMessage => {
    const encoded = encodeOp(op);
    return rt.parseMessage(encoded.type as rt.MessageType, encoded.payload) as rt.AddressMessage;
  };
  const v6 = { ifindex: 6, family: 6, address: 'fd01:b::1', prefixLen: 81 } as const;
  t.equal(parse({ op: 'addr.add', addr: v6 }).attrs.flags?.nodad, true, 'IPv6 add: IFA_F_NODAD');
  t.equal(parse({ op: 'addr.delete', addr: v6 }).attrs.flags, undefined, 'a delete carries no flags');
  t.equal(parse({ op: 'addr.add', addr: { ifindex: 4, family: 4, address: '9.0.0.1', prefixLen: 25 } }).attrs.flags, undefined, 'IPv4 has no DAD');
});

t.test('link messages: vxlan attributes, alias, master, flags', async (t) => {
  const create = encodeOp({ op: 'link.create', link: { name: 'vtep1024', kind: 'vxlan', mtu: 1420, mac: '70:b3:d5:80:00:01', alias: 'lashup', vxlan } });
  t.equal(create.type, RTM.NEWLINK);
  t.equal(create.flags, NLM_F.CREATE | NLM_F.EXCL, 'create refuses to clobber an existing link');
  t.match(decodeEvent(create.type, create.payload), { type: 'link', link: { name: 'vtep1024', kind: 'vxlan', mtu: 1420, mac: '70:b3:d5:80:00:01', alias: 'lashup', vxlan } });
  const v6 = encodeOp({ op: 'link.create', link: { name: 'vtep6', kind: 'vxlan', vxlan: { ...vxlan, localIp: 'fd00::1', learning: true } } });
  t.match(decodeEvent(v6.type, v6.payload), { link: { vxlan: { localIp: 'fd00::1', learning: true } } });
  const set = encodeOp({ op: 'link.set', ifindex: 9, up: true, master: 4, mtu: 1400, learning: false });
  t.equal(set.flags, 0);
  const parsed = rt.parseMessage(set.type as rt.MessageType, set.payload) as rt.LinkMessage;
  t.match(parsed, { data: { index: 9, flags: { up: true }, change: { up: true } }, attrs: { master: 4, mtu: 1400 } });
  t.equal(ifla.parseVxlan(ifla.parseInfo(parsed.attrs.linkinfo as Buffer).data as Buffer).learning, 0, 'learning off through changelink');
  t.equal(decodeEvent(set.type, set.payload), undefined, 'a link message without a name is not an event');
  const veth = encodeOp({ op: 'link.create', link: { name: 've0', kind: 'veth', peer: 'eth0', peerNetnsFd: 17 } });
  t.ok(veth.payload.includes(Buffer.from('eth0\0')), 'the veth peer name is in the message');
  t.match(decodeEvent(veth.type, veth.payload), { link: { name: 've0', kind: 'veth' } });
  t.throws(() => encodeOp({ op: 'link.create', link: { name: 'v', kind: 'veth' } }), TypeError);
  t.throws(() => encodeOp({ op: 'link.create', link: { name: 'v', kind: 'vxlan' } }), TypeError);
  t.throws(() => encodeOp({ op: 'neigh.replace', neigh: { ifindex: 1, family: 4, ip: 'nope', permanent: true } }), TypeError);
});

t.test('deletes are marked deleted and match loosely; frames are padded and carry REQUEST|ACK', async (t) => {
  const del = encodeOp({ op: 'route.delete', route: { family: 4, table: 254, dst: '0.0.0.0', prefixLen: 0, gateway: '192.0.2.9', ifindex: 2, protocol: 76, onlink: false, metric: 0, unicast: true } });
  t.equal(del.type, RTM.DELROUTE);
  t.match(decodeEvent(del.type, del.payload), { type: 'route', deleted: true, route: { dst: '0.0.0.0', prefixLen: 0, protocol: 76, unicast: false } });
  t.notOk((decodeEvent(del.type, del.payload) as { route: { gateway?: string } }).route.gateway, 'a delete matches by destination, table, metric and protocol');
  for (const op of [
    { op: 'neigh.delete', neigh: { ifindex: 5, family: 6, ip: 'fd01:a::2', mac: '70:b3:d5:80:00:02', permanent: true } },
    { op: 'fdb.delete', fdb: { ifindex: 5, mac: '70:b3:d5:80:00:02', dst: '192.0.2.2', permanent: true } },
    { op: 'addr.delete', addr: { ifindex: 5, family: 4, address: '44.128.0.1', prefixLen: 20 } },
    { op: 'rule.delete', rule: { family: 6, priority: 5, table: 254, dst: 'fd00::', dstLen: 8, srcLen: 0, protocol: 76 } },
  ] as KernelOp[]) {
    const e = encodeOp(op);
    t.match(decodeEvent(e.type, e.payload), { deleted: true }, op.op);
  }
  const dl = encodeOp({ op: 'link.delete', ifindex: 5 });
  t.match(rt.parseMessage(dl.type as rt.MessageType, dl.payload), { kind: 'link', data: { index: 5 } });
  const f = frame({ type: RTM.NEWROUTE, flags: NLM_F.CREATE, payload: Buffer.alloc(13) }, 77, 1234);
  t.equal(f.length, 32, '16-byte header + 13 bytes, padded to 4');
  t.equal(f.readUInt32LE(0), 29, 'the length field excludes padding');
  t.equal(f.readUInt16LE(6), NLM_F.CREATE | NLM_F.REQUEST | NLM_F.ACK);
  t.equal(f.readUInt32LE(8), 77);
  t.equal(decodeEvent(99, Buffer.alloc(0)), undefined, 'types lashup does not track decode to nothing');
});

t.test('the fast encoder writes the same messages as the general one', async (t) => {
  const ops: KernelOp[] = [
    { op: 'route.replace', route: { family: 4, table: 254, dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', ifindex: 5, protocol: 76, onlink: true, metric: 0, unicast: true } },
    { op: 'route.replace', route: { family: 6, table: 1000, dst: 'fd01:b:0:0:2::', prefixLen: 80, gateway: 'fd01:a::2', ifindex: 5, protocol: 76, onlink: true, metric: 1024, unicast: true } },
    { op: 'route.replace', route: { family: 4, table: 254, dst: '0.0.0.0', prefixLen: 0, gateway: '192.0.2.254', ifindex: 2, protocol: 76, onlink: false, metric: 100, unicast: true } },
    { op: 'route.delete', route: { family: 4, table: 254, dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', ifindex: 5, protocol: 76, onlink: true, metric: 0, unicast: true } },
    { op: 'neigh.replace', neigh: { ifindex: 5, family: 4, ip: '44.128.0.2', mac: '70:B3:D5:80:00:02', permanent: true } },
    { op: 'neigh.replace', neigh: { ifindex: 5, family: 6, ip: 'fd01:a::2', mac: '70:b3:d5:80:00:02', permanent: true } },
    { op: 'neigh.delete', neigh: { ifindex: 5, family: 4, ip: '44.128.0.2', mac: '70:b3:d5:80:00:02', permanent: true } },
    { op: 'fdb.replace', fdb: { ifindex: 5, mac: '70:b3:d5:80:00:02', dst: '192.0.2.2', permanent: true } },
    { op: 'fdb.replace', fdb: { ifindex: 5, mac: '70:b3:d5:80:00:02', dst: 'fd00::2', permanent: true } },
    { op: 'fdb.delete', fdb: { ifindex: 5, mac: '70:b3:d5:80:00:02', dst: '192.0.2.2', permanent: true } },
  ];
  const buf = Buffer.alloc(HOT_MAX_BYTES);
  for (const op of ops) {
    const n = encodeHotInto(op, buf, 0, 42, 7, NLM_F.ACK);
    const general = frame(encodeOp(op), 42, 7);
    const what = `${op.op} ${JSON.stringify(op).slice(0, 60)}`;
    // Header fields after the length (which may or may not count the last attribute's padding; the kernel accepts both).
    t.same(buf.subarray(4, 16).toString('hex'), general.subarray(4, 16).toString('hex'), `${what}: header`);
    t.same(decodeEvent(buf.readUInt16LE(4), buf.subarray(16, buf.readUInt32LE(0))), decodeEvent(general.readUInt16LE(4), general.subarray(16, general.readUInt32LE(0))), `${what}: same content`);
    t.equal(n % 4, 0, 'padded for batching');
  }
  t.equal(encodeHotInto({ op: 'link.delete', ifindex: 3 }, buf, 0, 1, 1, 0), 0, 'other kinds are left to the general path');
  for (const bad of ['44.128.0', '44.128.0.256', '44.128.x.1', '1.2.3.4.5', '']) {
    t.equal(encodeHotInto({ op: 'neigh.replace', neigh: { ifindex: 5, family: 4, ip: bad, mac: '70:b3:d5:80:00:02', permanent: true } }, buf, 0, 1, 1, 0), -1, `bad IP ${JSON.stringify(bad)}`);
  }
  t.equal(encodeHotInto({ op: 'fdb.replace', fdb: { ifindex: 5, mac: '70-b3-d5-80-00-02', dst: '192.0.2.2', permanent: true } }, buf, 0, 1, 1, 0), -1, 'bad MAC');
  t.equal(encodeHotInto({ op: 'fdb.replace', fdb: { ifindex: 5, mac: '70:b3:d5:80:00:0g', dst: '192.0.2.2', permanent: true } }, buf, 0, 1, 1, 0), -1, 'bad MAC digit');
  t.equal(
    encodeHotInto({ op: 'route.replace', route: { family: 6, table: 254, dst: 'fd01::zz', prefixLen: 64, protocol: 76, onlink: false, metric: 1024, unicast: true } }, buf, 0, 1, 1, 0),
    -1,
    'bad IPv6',
  );
});
