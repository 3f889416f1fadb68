import t from 'tap';
import { isLashupError } from '../../../src/common/index.js';
import { DataplaneErrorCode, normalizeState, errnoFromMessage } from '../../../src/dataplane/index.js';

const badPath = (state: object): string | undefined => {
  try {
    normalizeState(state);
  } catch (err) {
    if (isLashupError(err, DataplaneErrorCode.InvalidDesired)) return err.details['path'] as string;
    throw err;
  }
  return undefined;
};

t.test('canonical forms: upper-case MACs and long IPv6 text compare equal to their canonical text', async (t) => {
  const norm = normalizeState({
    routes: [{ dst: 'FD01:B:0:0::', prefixLen: 80, gateway: 'fd01:a:0::2', dev: 'vtep1024', onlink: true }],
    neighbours: [{ dev: 'vtep1024', ip: 'FD01:A::2', mac: '70:B3:D5:80:00:02' }],
    fdb: [{ dev: 'vtep1024', mac: '70:B3:D5:80:00:02', dst: '192.0.2.2' }],
  });
  t.same(
    norm.entries.map((e) => e.key),
    ['r|254|fd01:b::/80|1024', 'n|vtep1024|fd01:a::2', 'f|vtep1024|70:b3:d5:80:00:02'],
    'IPv6 routes default to metric 1024, like the kernel',
  );
});

t.test('every malformed field is named', async (t) => {
  const route = { dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', dev: 'vtep1024', onlink: true };
  t.equal(badPath({ routes: [{ ...route, dst: '9.0.2.1' }] }), 'desired.routes[0].dst', 'host bits set');
  t.equal(badPath({ routes: [{ ...route, prefixLen: 33 }] }), 'desired.routes[0].dst.prefixLen');
  t.equal(badPath({ routes: [{ ...route, gateway: 'fd01:a::2' }] }), 'desired.routes[0].gateway', 'gateway of the other family');
  t.equal(badPath({ routes: [{ ...route, dev: 'a-name-too-long-for-linux' }] }), 'desired.routes[0].dev');
  t.equal(badPath({ routes: [{ ...route, table: 0 }] }), 'desired.routes[0].table');
  t.equal(badPath({ routes: [null] }), 'desired.routes[0]');
  t.equal(badPath({ routes: 'x' }), 'desired.routes');
  t.equal(badPath({ neighbours: [{ dev: 'vtep1024', ip: '44.128.0.2', mac: '70:b3:d5:80:00' }] }), 'desired.neighbours[0].mac');
  t.equal(badPath({ fdb: [{ dev: 'vtep1024', mac: '70:b3:d5:80:00:02', dst: 'nowhere' }] }), 'desired.fdb[0].dst');
  t.equal(badPath({ links: [{ name: 'x', kind: 'dummy', mtu: 1500 }] }), 'desired.links[0].kind');
  t.equal(badPath({ links: [{ name: 'x', kind: 'vxlan', mtu: 1500 }] }), 'desired.links[0].vxlan');
  t.equal(badPath({ links: [{ name: 'x', kind: 'bridge', mtu: 1500, vxlan: { vni: 1, port: 1, localIp: '192.0.2.1', learning: false } }] }), 'desired.links[0].vxlan');
  t.equal(badPath({ links: [{ name: 'x', kind: 'vxlan', mtu: 1500, vxlan: { vni: 0, port: 1, localIp: '192.0.2.1', learning: false } }] }), 'desired.links[0].vxlan.vni');
  t.equal(badPath({ links: [{ name: 'x', kind: 'bridge', mtu: 10 }] }), 'desired.links[0].mtu');
  t.equal(badPath({ links: [{ name: 'x', kind: 'bridge', mtu: 1500, mac: 'zz' }] }), 'desired.links[0].mac');
  t.equal(
    badPath({
      links: [
        { name: 'x', kind: 'bridge', mtu: 1500 },
        { name: 'x', kind: 'bridge', mtu: 1500 },
      ],
    }),
    'desired.links[1].name',
  );
  t.equal(badPath({ addresses: [{ dev: 'x', address: '9.0.1.1', prefixLen: 0 }] }), 'desired.addresses[0].prefixLen');
  t.equal(badPath({ rules: [{ family: 5, priority: 100, table: 10 }] }), 'desired.rules[0].family');
  t.equal(badPath({ rules: [{ family: 4, priority: 100, table: 10, src: 'fd00::' }] }), 'desired.rules[0].src');
  t.equal(badPath({ rules: [{ family: 4, priority: 0, table: 10 }] }), 'desired.rules[0].priority');
  t.equal(badPath({ rules: [{ family: 6, priority: 100, table: 10, dst: 'fd00::', dstLen: 8, fwmark: -1 }] }), 'desired.rules[0].fwmark');
  t.equal(badPath(null as unknown as object), 'desired');
  t.equal(badPath({ rules: [{ family: 4, priority: 100, table: 10, src: '10.0.0.0', srcLen: 8 }] }), undefined, 'a valid rule passes');
});

t.test('errno names are parsed out of the netlink package messages', async (t) => {
  t.equal(errnoFromMessage('Request rejected: EEXIST'), 'EEXIST');
  t.equal(errnoFromMessage('Request rejected: ENETUNREACH'), 'ENETUNREACH');
  t.equal(errnoFromMessage('something else'), undefined);
});
