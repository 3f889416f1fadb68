import t from 'tap';
import { DEFAULT_OVERLAY_CONFIG, IpamErrorCode, IpamState, decodeCommand, decodeResult, encodeCommand, validateOverlayConfig, type OverlayConfig } from '../../../src/ipam/index.js';

function state(config: OverlayConfig = DEFAULT_OVERLAY_CONFIG as OverlayConfig): IpamState {
  const s = new IpamState();
  s.setConfig(config);
  return s;
}

t.test('DC/OS defaults: lowest free blocks, halves, gateways, VTEP and MAC', async (t) => {
  const s = state();
  const a = s.allocate('agent-a');
  t.same(a, {
    agent: 'agent-a',
    vtepIp: '44.128.0.1',
    vtepIp6: 'fd01:a::1',
    vtepMac: '70:b3:d5:80:00:01',
    networks: {
      dcos: { subnet: '9.0.0.0/24', mesos: '9.0.0.0/25', docker: '9.0.0.128/25', mesosGateway: '9.0.0.1', dockerGateway: '9.0.0.129' },
      dcos6: {
        subnet6: 'fd01:b::/80',
        mesos6: 'fd01:b::/81',
        docker6: 'fd01:b::8000:0:0/81',
        mesosGateway6: 'fd01:b::1',
        dockerGateway6: 'fd01:b::8000:0:1',
      },
    },
  });
  const b = s.allocate('agent-b');
  t.equal(b.vtepIp, '44.128.0.2');
  t.equal(b.vtepMac, '70:b3:d5:80:00:02');
  t.equal(b.networks['dcos']?.subnet, '9.0.1.0/24');
  t.same(s.allocate('agent-a'), a, 'idempotent');
  t.ok(s.release('agent-a'));
  t.notOk(s.release('agent-a'), 'releasing twice');
  t.equal(s.allocate('agent-c').networks['dcos']?.subnet, '9.0.0.0/24', 'a released block is the lowest free again');
  t.equal(s.lease('agent-c')?.vtepIp, '44.128.0.1');
  t.equal(s.lease('nobody'), undefined);
});

t.test('networks added later are allocated at the next request; disabled ones are not', async (t) => {
  const base = DEFAULT_OVERLAY_CONFIG as OverlayConfig;
  const s = state({ ...base, networks: [base.networks[0] as OverlayConfig['networks'][0]] });
  const first = s.allocate('a');
  t.same(Object.keys(first.networks), ['dcos']);
  s.setConfig({ ...base, networks: [...base.networks, { name: 'blue', subnet: '10.10.0.0/16', prefix: 26, enabled: true }, { name: 'off', subnet: '10.20.0.0/16', prefix: 24, enabled: false }] });
  const again = s.allocate('a');
  t.same(Object.keys(again.networks).sort(), ['blue', 'dcos', 'dcos6']);
  t.equal(again.networks['dcos']?.subnet, first.networks['dcos']?.subnet, 'existing blocks unchanged');
  t.equal(again.networks['blue']?.mesos, '10.10.0.0/27');
});

t.test('exhaustion is a typed error naming the network and its counts; nothing half-made', async (t) => {
  const s = state({ ...(DEFAULT_OVERLAY_CONFIG as OverlayConfig), networks: [{ name: 'tiny', subnet: '10.0.0.0/23', prefix: 24 }] });
  s.allocate('a');
  s.allocate('b');
  const result = s.execute({ op: 'allocate', agent: 'c' });
  t.equal(result.ok, false);
  if (!result.ok) {
    t.equal(result.error.code, IpamErrorCode.Exhausted);
    t.match(result.error.message, /network tiny is exhausted: 2 of 2 \/24 blocks of 10\.0\.0\.0\/23/);
    t.same(result.error.details, { network: 'tiny', used: 2, total: 2, family: 4 });
  }
  t.equal(s.lease('c'), undefined, 'no VTEP address was taken');
  t.equal(s.agentCount, 2);
  const usage = s.usage();
  t.same(
    usage.map((u) => [u.network, u.used, u.total]),
    [['tiny', 2, 2]],
  );
  const vteps = state({ ...(DEFAULT_OVERLAY_CONFIG as OverlayConfig), vtepSubnet: '44.128.0.0/30', networks: [{ name: 'n', subnet: '10.0.0.0/16', prefix: 24 }] });
  vteps.allocate('a');
  vteps.allocate('b');
  t.throws(() => vteps.allocate('c'), { code: IpamErrorCode.Exhausted, message: /VTEP subnet 44\.128\.0\.0\/30 is exhausted: 2 of 2/ });
});

t.test('config rules: validation names the field; ranges cannot move under allocations', async (t) => {
  const base = DEFAULT_OVERLAY_CONFIG as OverlayConfig;
  const bad: [Partial<OverlayConfig>, RegExp][] = [
    [{ networks: [] }, /overlay\.networks = \[\] .*at least one network/],
    [{ networks: [{ name: 'this-name-is-long', subnet: '10.0.0.0/8', prefix: 24 }] }, /networks\[0\]\.name .* 1 to 13/],
    [{ networks: [{ name: 'host', subnet: '10.0.0.0/8', prefix: 24 }] }, /reserved/],
    [{ networks: [{ name: 'a', subnet: '10.0.0.1/8', prefix: 24 }] }, /networks\[0\]\.subnet .*zero host bits/],
    [{ networks: [{ name: 'a', subnet: '10.0.0.0/8', prefix: 30 }] }, /networks\[0\]\.prefix = 30/],
    [{ networks: [{ name: 'a' }] }, /at least one of subnet/],
    [
      {
        networks: [
          { name: 'a', subnet: '10.0.0.0/8', prefix: 24 },
          { name: 'b', subnet: '10.1.0.0/16', prefix: 24 },
        ],
      },
      /networks\[1\]\.subnet \(10\.1\.0\.0\/16\) overlaps overlay\.networks\[0\]\.subnet \(10\.0\.0\.0\/8\)/,
    ],
    [
      {
        networks: [
          { name: 'a', subnet: '10.0.0.0/8', prefix: 24 },
          { name: 'a', subnet: '11.0.0.0/8', prefix: 24 },
        ],
      },
      /no other network uses/,
    ],
    [{ vtepSubnet: '9.0.0.0/20' }, /networks\[0\]\.subnet \(9\.0\.0\.0\/8\) overlaps overlay\.vtepSubnet/],
    [{ vtepSubnet: '44.128.0.0/31' }, /at most \/30/],
    [{ vtepMacOui: '71:b3:d5:00:00:00' }, /unicast/],
    [{ vtepMacOui: '70:b3:d5:00:00:01' }, /xx:xx:xx:00:00:00/],
    [{ vni: 0 }, /overlay\.vni/],
    [{ mtu: 1000 }, /overlay\.mtu/],
    [{ vtepName: 'a-very-long-interface' }, /vtepName/],
  ];
  for (const [change, pattern] of bad) t.throws(() => validateOverlayConfig({ ...base, ...change } as OverlayConfig), { code: IpamErrorCode.InvalidConfig, message: pattern }, JSON.stringify(change));
  const s = state();
  s.allocate('a');
  t.throws(() => s.setConfig({ ...base, networks: [{ name: 'dcos', subnet: '9.0.0.0/8', prefix: 25 }, base.networks[1] as OverlayConfig['networks'][0]] }), {
    code: IpamErrorCode.InvalidConfig,
    message: /dcos has allocations/,
  });
  t.throws(() => s.setConfig({ ...base, vtepSubnet: '44.129.0.0/20' }), { message: /VTEP subnet and MAC OUI cannot change/ });
  s.setConfig({ ...base, networks: [{ ...(base.networks[0] as OverlayConfig['networks'][0]), enabled: false }, base.networks[1] as OverlayConfig['networks'][0]] });
  t.pass('disabling a network in use is allowed');
  t.throws(() => new IpamState().allocate('x'), { code: IpamErrorCode.NotConfigured });
});

t.test('commands, results and snapshots round-trip; bad commands are refused as results', async (t) => {
  const s = state();
  t.same(decodeCommand(encodeCommand({ op: 'allocate', agent: 'a' })), { op: 'allocate', agent: 'a' });
  t.same(decodeCommand(encodeCommand({ op: 'release', agent: 'a' })), { op: 'release', agent: 'a' });
  const ok = decodeResult(s.apply(encodeCommand({ op: 'allocate', agent: 'a' })));
  t.equal(ok.ok, true);
  const bad = decodeResult(s.apply(Uint8Array.of(1, 2, 3)));
  t.equal(bad.ok ? '' : bad.error.code, IpamErrorCode.Decode);
  s.allocate('b');
  s.release('a');
  const copy = new IpamState();
  copy.restore(s.snapshot());
  t.same(copy.leases(), s.leases());
  t.same(copy.usage(), s.usage());
  t.equal(copy.allocate('c').vtepIp, s.allocate('c').vtepIp, 'the restored state allocates exactly as the original');
  const empty = new IpamState();
  empty.restore(new IpamState().snapshot());
  t.equal(empty.config, undefined);
});

t.test("an agent's identity is pinned by its first allocation; another identity is refused until a release", async (t) => {
  const s = state();
  const a = s.allocate('agent-a', 'peer-1');
  t.equal(a.peerId, 'peer-1', 'the lease names the pinned identity');
  t.equal(s.allocate('agent-a', 'peer-1').vtepIp, a.vtepIp, 'the same identity gets its lease again');
  t.equal(s.allocate('agent-a').peerId, 'peer-1', 'a request without an identity (a log from before pinning) changes nothing');
  t.throws(() => s.allocate('agent-a', 'peer-2'), { code: IpamErrorCode.IdentityMismatch, details: { agent: 'agent-a', pinned: 'peer-1', presented: 'peer-2' } });
  const refused = decodeResult(s.apply(encodeCommand({ op: 'allocate', agent: 'agent-a', peerId: 'peer-2' })));
  t.match(refused, { ok: false, error: { code: IpamErrorCode.IdentityMismatch } }, 'through the log: a refused result, not a failure');
  // A lease from before pinning is pinned by its next request.
  const legacy = s.allocate('agent-b');
  t.equal(legacy.peerId, undefined);
  t.equal(s.allocate('agent-b', 'peer-b').peerId, 'peer-b');
  // Snapshots keep identities, and read snapshots written before them.
  const restored = new IpamState();
  restored.restore(s.snapshot());
  t.equal(restored.lease('agent-a')?.peerId, 'peer-1');
  t.equal(restored.lease('agent-b')?.peerId, 'peer-b');
  t.ok(s.release('agent-a'));
  t.equal(s.allocate('agent-a', 'peer-2').peerId, 'peer-2', 'after a release, a new identity may take the name');
  t.same(decodeCommand(encodeCommand({ op: 'allocate', agent: 'x', peerId: 'p' })), { op: 'allocate', agent: 'x', peerId: 'p' });
  t.same(decodeCommand(encodeCommand({ op: 'allocate', agent: 'x' })), { op: 'allocate', agent: 'x' });
  t.throws(() => decodeCommand(encodeCommand({ op: 'allocate', agent: 'x', peerId: '' })), { code: IpamErrorCode.Decode });
});

t.test('isolation policy fields are validated with their JSON path', async (t) => {
  const base = structuredClone(DEFAULT_OVERLAY_CONFIG) as OverlayConfig;
  const withNets = (networks: unknown[]): OverlayConfig => ({ ...base, networks }) as OverlayConfig;
  const a = { name: 'a', subnet: '10.1.0.0/16', prefix: 24 };
  const b = { name: 'b', subnet: '10.2.0.0/16', prefix: 24 };
  t.doesNotThrow(() => validateOverlayConfig(withNets([{ ...a, allowFrom: ['b'], allowHosts: false, allowOutbound: false }, b])));
  t.throws(() => validateOverlayConfig(withNets([{ ...a, allowFrom: ['nope'] }, b])), {
    code: IpamErrorCode.InvalidConfig,
    details: { path: 'overlay.networks[0].allowFrom[0]', value: 'nope' },
    message: /another overlay network \(b\)/,
  });
  t.throws(() => validateOverlayConfig(withNets([{ ...a, allowFrom: ['a'] }, b])), {
    code: IpamErrorCode.InvalidConfig,
    details: { path: 'overlay.networks[0].allowFrom[0]' },
    message: /always reach each other/,
  });
  t.throws(() => validateOverlayConfig(withNets([{ ...a, allowFrom: ['b', 'b'] }, b])), { code: IpamErrorCode.InvalidConfig, details: { path: 'overlay.networks[0].allowFrom[1]' } });
  t.throws(() => validateOverlayConfig(withNets([{ ...a, allowFrom: 'b' }, b])), { code: IpamErrorCode.InvalidConfig, details: { path: 'overlay.networks[0].allowFrom' } });
  t.throws(() => validateOverlayConfig(withNets([a, { ...b, allowHosts: 'no' }])), { code: IpamErrorCode.InvalidConfig, details: { path: 'overlay.networks[1].allowHosts' } });
  t.throws(() => validateOverlayConfig(withNets([a, { ...b, allowOutbound: 1 }])), { code: IpamErrorCode.InvalidConfig, details: { path: 'overlay.networks[1].allowOutbound' } });
});
