import t from 'tap';
import { isLashupError } from '../../../src/common/index.js';
import { VxlanErrorCode, bridgeNames, localState, remoteState, validateNetworkName, vtepMac, DEFAULT_VTEP_CONFIG } from '../../../src/vxlan/index.js';
import { normalizeState } from '../../../src/dataplane/index.js';

const invalid = (fn: () => unknown, path: string) => {
  try {
    fn();
  } catch (err) {
    return isLashupError(err, VxlanErrorCode.InvalidSpec) && (err.details['path'] as string) === path;
  }
  return false;
};

t.test('VTEP MAC is the OUI plus the low 24 bits of the VTEP address', async (t) => {
  t.equal(vtepMac('44.128.0.1'), '70:b3:d5:80:00:01');
  t.equal(vtepMac('44.128.15.254'), '70:b3:d5:80:0f:fe');
  t.equal(vtepMac('10.1.2.3', '02:AB:cd:00:00:00'), '02:ab:cd:01:02:03');
  t.ok(
    invalid(() => vtepMac('fd01:a::1'), 'vtepIp'),
    'an IPv6 VTEP address has no 24-bit tail',
  );
  t.ok(
    invalid(() => vtepMac('44.128.0.1', '01:00:5e:00:00:00'), 'vtepMacOui'),
    'a multicast OUI is refused',
  );
  t.ok(
    invalid(() => vtepMac('44.128.0.1', '70:b3:d5:00:00:01'), 'vtepMacOui'),
    'an OUI with low bytes set is refused',
  );
});

t.test('bridge names fit Linux interface names; bad network names name what is valid', async (t) => {
  t.same(bridgeNames('dcos'), { mesos: 'm-dcos', docker: 'd-dcos' });
  t.same(bridgeNames('a234567890123'), { mesos: 'm-a234567890123', docker: 'd-a234567890123' });
  for (const bad of ['a2345678901234', '', '-x', 'a b', 'a/b', 'host', 'None']) {
    t.ok(
      invalid(() => validateNetworkName(bad), 'network'),
      `refuses ${JSON.stringify(bad)}`,
    );
  }
});

t.test('local state: VTEP with derived MAC and learning off, bridges with their gateways', async (t) => {
  const state = localState(DEFAULT_VTEP_CONFIG, {
    underlayIp: '192.0.2.1',
    vtepAddress: '44.128.0.1/20',
    vtepAddress6: 'fd01:a::1/64',
    networks: [
      { name: 'dcos', mesos: '9.0.1.0/25', mesosGateway: '9.0.1.1', docker: '9.0.1.128/25', dockerGateway: '9.0.1.129' },
      { name: 'dcos6', mesos6: 'fd01:b:0:0:1::/81', mesosGateway6: 'fd01:b:0:0:1::1', docker6: 'fd01:b:0:0:1:8000::/81', dockerGateway6: 'FD01:B:0:0:1:8000:0:1' },
    ],
  });
  t.same(state.links[0], { name: 'vtep1024', kind: 'vxlan', mtu: 1420, mac: '70:b3:d5:80:00:01', vxlan: { vni: 1024, port: 64000, localIp: '192.0.2.1', learning: false } });
  t.same(
    state.links.map((l) => l.name),
    ['vtep1024', 'm-dcos', 'd-dcos', 'm-dcos6', 'd-dcos6'],
  );
  t.same(state.addresses, [
    { dev: 'vtep1024', address: '44.128.0.1', prefixLen: 20 },
    { dev: 'vtep1024', address: 'fd01:a::1', prefixLen: 64 },
    { dev: 'm-dcos', address: '9.0.1.1', prefixLen: 25 },
    { dev: 'd-dcos', address: '9.0.1.129', prefixLen: 25 },
    { dev: 'm-dcos6', address: 'fd01:b::1:0:0:1', prefixLen: 81 },
    { dev: 'd-dcos6', address: 'fd01:b::1:8000:0:1', prefixLen: 81 },
  ]);
  t.doesNotThrow(() => normalizeState(state), 'the dataplane accepts it');
  t.ok(invalid(() => localState({ ...DEFAULT_VTEP_CONFIG, vni: 0 }, { underlayIp: '192.0.2.1', vtepAddress: '44.128.0.1/20', networks: [] }), 'vtep.vni'));
  t.ok(invalid(() => localState({ ...DEFAULT_VTEP_CONFIG, name: 'vtep-name-too-long' }, { underlayIp: '192.0.2.1', vtepAddress: '44.128.0.1/20', networks: [] }), 'vtep.name'));
  t.ok(invalid(() => localState(DEFAULT_VTEP_CONFIG, { underlayIp: 'x', vtepAddress: '44.128.0.1/20', networks: [] }), 'local.underlayIp'));
  t.ok(invalid(() => localState(DEFAULT_VTEP_CONFIG, { underlayIp: '192.0.2.1', vtepAddress: '44.128.0.1', networks: [] }), 'local.vtepAddress'));
  t.ok(
    invalid(
      () => localState(DEFAULT_VTEP_CONFIG, { underlayIp: '192.0.2.1', vtepAddress: '44.128.0.1/20', networks: [{ name: 'dcos', mesos: '9.0.1.0/25', mesosGateway: 'fd00::1' }] }),
      'local.networks[0].mesosGateway',
    ),
  );
  t.ok(
    invalid(
      () => localState(DEFAULT_VTEP_CONFIG, { underlayIp: '192.0.2.1', vtepAddress: '44.128.0.1/20', networks: [{ name: 'dcos', docker6: '9.0.1.0/25', dockerGateway6: '9.0.1.1' }] }),
      'local.networks[0].docker6',
    ),
  );
});

t.test('remote state: one route per subnet, one neighbour per VTEP address, one FDB entry', async (t) => {
  const state = remoteState(DEFAULT_VTEP_CONFIG, {
    underlayIp: '192.0.2.2',
    vtepIp: '44.128.0.2',
    vtepIp6: 'FD01:A:0::2',
    vtepMac: '70:B3:D5:80:00:02',
    subnets: ['9.0.2.0/24', 'fd01:b:0:0:2::/80'],
  });
  t.same(state.routes, [
    { dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', dev: 'vtep1024', onlink: true },
    { dst: 'fd01:b:0:0:2::', prefixLen: 80, gateway: 'fd01:a::2', dev: 'vtep1024', onlink: true },
  ]);
  t.same(state.neighbours, [
    { dev: 'vtep1024', ip: '44.128.0.2', mac: '70:b3:d5:80:00:02' },
    { dev: 'vtep1024', ip: 'fd01:a::2', mac: '70:b3:d5:80:00:02' },
  ]);
  t.same(state.fdb, [{ dev: 'vtep1024', mac: '70:b3:d5:80:00:02', dst: '192.0.2.2' }]);
  const base = { underlayIp: '192.0.2.2', vtepIp: '44.128.0.2', vtepMac: '70:b3:d5:80:00:02', subnets: ['9.0.2.0/24'] };
  t.ok(
    invalid(() => remoteState(DEFAULT_VTEP_CONFIG, { ...base, subnets: ['fd01:b::/80'] }), 'remote.subnets[0]'),
    'an IPv6 subnet needs an IPv6 VTEP address',
  );
  t.ok(
    invalid(() => remoteState(DEFAULT_VTEP_CONFIG, { ...base, subnets: ['9.0.2.1/24'] }), 'remote.subnets[0]'),
    'host bits set',
  );
  t.ok(invalid(() => remoteState(DEFAULT_VTEP_CONFIG, { ...base, vtepMac: 'nope' }), 'remote.vtepMac'));
  t.ok(invalid(() => remoteState(DEFAULT_VTEP_CONFIG, { ...base, vtepIp: 'fd01:a::2' }), 'remote.vtepIp'));
  t.ok(invalid(() => remoteState(DEFAULT_VTEP_CONFIG, { ...base, vtepIp6: '44.128.0.2' }), 'remote.vtepIp6'));
  t.ok(invalid(() => remoteState(DEFAULT_VTEP_CONFIG, { ...base, underlayIp: '' }), 'remote.underlayIp'));
});
