import fc from 'fast-check';
import t from 'tap';
import type { Lease } from '../../../src/ipam/index.js';
import { agentGroup, localDesired, parseOverlayEntry, RemoteStateCache, remoteDesired, RoutesError, RoutesErrorCode } from '../../../src/routes/index.js';
import { DEFAULT_VTEP_CONFIG, vtepMac } from '../../../src/vxlan/index.js';

const entry = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  agentIp: `192.0.2.${i}`,
  vtepMac: vtepMac(`44.128.0.${i}`),
  subnet: `9.0.${i}.0/24`,
  nodeId: `node-${i}`,
  ...extra,
});
const entry6 = (i: number): Record<string, unknown> => ({ agentIp: `192.0.2.${i}`, vtepMac: vtepMac(`44.128.0.${i}`), subnet6: `fd01:b:0:0:${i}::/80`, vtepIp6: `fd01:a::${i}`, nodeId: `node-${i}` });

function overlays(agents: number[]): Map<string, unknown> {
  return new Map<string, unknown>([
    ['dcos', Object.fromEntries(agents.map((i) => [`44.128.0.${i}`, entry(i)]))],
    ['dcos6', Object.fromEntries(agents.map((i) => [`44.128.0.${i}`, entry6(i)]))],
  ]);
}

t.test('local devices from a lease', async (t) => {
  const lease: Lease = {
    agent: 'a1',
    vtepIp: '44.128.0.1',
    vtepIp6: 'fd01:a::1',
    vtepMac: '70:b3:d5:80:00:01',
    networks: {
      dcos: { subnet: '9.0.1.0/24', mesos: '9.0.1.0/25', mesosGateway: '9.0.1.1', docker: '9.0.1.128/25', dockerGateway: '9.0.1.129' },
      dcos6: { subnet6: 'fd01:b:0:0:1::/80', mesos6: 'fd01:b:0:0:1::/81', mesosGateway6: 'fd01:b:0:0:1::1', docker6: 'fd01:b:0:0:1:8000::/81', dockerGateway6: 'fd01:b:0:0:1:8000:0:1' },
    },
  };
  const s = localDesired(DEFAULT_VTEP_CONFIG, { underlayIp: '192.0.2.1', lease, vtepPrefixLen: 20, vtepPrefixLen6: 64 });
  t.same(
    s.links.map((l) => l.name),
    ['vtep1024', 'm-dcos', 'd-dcos', 'm-dcos6', 'd-dcos6'],
  );
  t.match(s.links[0], { kind: 'vxlan', mac: '70:b3:d5:80:00:01', vxlan: { localIp: '192.0.2.1', vni: 1024, port: 64000, learning: false } });
  t.same(
    s.addresses.map((a) => `${a.dev} ${a.address}/${a.prefixLen}`),
    ['vtep1024 44.128.0.1/20', 'vtep1024 fd01:a::1/64', 'm-dcos 9.0.1.1/25', 'd-dcos 9.0.1.129/25', 'm-dcos6 fd01:b::1:0:0:1/81', 'd-dcos6 fd01:b::1:8000:0:1/81'],
  );
  t.throws(() => localDesired(DEFAULT_VTEP_CONFIG, { underlayIp: 'not-an-ip', lease, vtepPrefixLen: 20 }), { code: RoutesErrorCode.InvalidLocal, message: /not-an-ip/ });
});

t.test('an entry object parsed before is reused only at its own place: a new object or another key is parsed anew', async (t) => {
  const shared = entry(2);
  const first = remoteDesired(DEFAULT_VTEP_CONFIG, undefined, new Map([['dcos', { '44.128.0.2': shared }]]));
  const again = remoteDesired(DEFAULT_VTEP_CONFIG, undefined, new Map([['dcos', { '44.128.0.2': shared }]]));
  t.same([...again.groups], [...first.groups], 'the same entry object gives the same routes');
  const moved = remoteDesired(DEFAULT_VTEP_CONFIG, undefined, new Map([['dcos', { '44.128.0.7': shared }]]));
  t.same(
    moved.groups.get(agentGroup('44.128.0.7'))?.routes.map((r) => `${r.dst}/${r.prefixLen} via ${r.gateway}`),
    ['9.0.2.0/24 via 44.128.0.7'],
    'the same object under another VTEP key routes through that VTEP',
  );
  const changed = remoteDesired(DEFAULT_VTEP_CONFIG, undefined, new Map([['dcos', { '44.128.0.2': entry(2, { subnet: '9.0.42.0/24' }) }]]));
  t.same(
    changed.groups.get(agentGroup('44.128.0.2'))?.routes.map((r) => r.dst),
    ['9.0.42.0'],
    'a new object at the same place is parsed anew',
  );
  const bad = remoteDesired(DEFAULT_VTEP_CONFIG, undefined, new Map([['dcos', { 'not-an-ip': shared }]]));
  t.equal(bad.problems[0]?.code, RoutesErrorCode.InvalidEntry, 'the same object under a malformed key is refused there');
});

t.test("with a state cache an unchanged agent's state is the same object; a changed one is new; a gone one is let go", async (t) => {
  const states = new RemoteStateCache();
  const g = (i: number): string => agentGroup(`44.128.0.${i}`);
  const first = remoteDesired(DEFAULT_VTEP_CONFIG, '44.128.0.1', overlays([1, 2, 3]), [], states);
  const second = remoteDesired(DEFAULT_VTEP_CONFIG, '44.128.0.1', overlays([1, 2, 3]), [], states);
  t.equal(second.groups.get(g(2)), first.groups.get(g(2)), 'same inputs (in new entry objects): the same state object');
  t.same([...second.groups], [...remoteDesired(DEFAULT_VTEP_CONFIG, '44.128.0.1', overlays([1, 2, 3])).groups], 'and what a call without the cache builds');
  const moved = overlays([1, 2, 3]);
  (moved.get('dcos') as Record<string, unknown>)['44.128.0.3'] = entry(3, { agentIp: '192.0.2.33' });
  const third = remoteDesired(DEFAULT_VTEP_CONFIG, '44.128.0.1', moved, [], states);
  t.equal(third.groups.get(g(2)), first.groups.get(g(2)), 'an agent that did not change keeps its object');
  t.not(third.groups.get(g(3)), first.groups.get(g(3)), 'a changed agent gets a new one');
  t.same(third.groups.get(g(3))?.fdb, [{ dev: 'vtep1024', mac: '70:b3:d5:80:00:03', dst: '192.0.2.33' }]);
  remoteDesired(DEFAULT_VTEP_CONFIG, '44.128.0.1', overlays([1, 2]), [], states);
  const back = remoteDesired(DEFAULT_VTEP_CONFIG, '44.128.0.1', moved, [], states);
  t.not(back.groups.get(g(3)), third.groups.get(g(3)), 'an agent absent from the last call was let go: built again when it returns');
  t.same(back.groups.get(g(3)), third.groups.get(g(3)));
});

t.test('one group per remote agent, both families, self left out', async (t) => {
  const { groups, problems } = remoteDesired(DEFAULT_VTEP_CONFIG, '44.128.0.1', overlays([1, 2, 3]));
  t.same(problems, []);
  t.same([...groups.keys()], [agentGroup('44.128.0.2'), agentGroup('44.128.0.3')]);
  const g = groups.get('agent/44.128.0.2');
  t.same(
    g?.routes.map((r) => `${r.dst}/${r.prefixLen} via ${r.gateway}`),
    ['9.0.2.0/24 via 44.128.0.2', 'fd01:b:0:0:2::/80 via fd01:a::2'],
  );
  t.same(
    g?.neighbours.map((n) => n.ip),
    ['44.128.0.2', 'fd01:a::2'],
  );
  t.same(g?.fdb, [{ dev: 'vtep1024', mac: '70:b3:d5:80:00:02', dst: '192.0.2.2' }]);
});

t.test('the result does not depend on the order entries arrived in', async (t) => {
  const base = remoteDesired(DEFAULT_VTEP_CONFIG, undefined, overlays([1, 2, 3, 4, 5]));
  // A conflicting pair is included so that tie-breaking is exercised too.
  const contested = (m: Map<string, unknown>): Map<string, unknown> => {
    const dcos = { ...(m.get('dcos') as Record<string, unknown>), '44.128.0.9': entry(9, { subnet: '9.0.3.0/24' }) };
    return new Map([...m, ['dcos', dcos]]);
  };
  const expected = JSON.stringify([...remoteDesired(DEFAULT_VTEP_CONFIG, undefined, contested(overlays([1, 2, 3, 4, 5]))).groups]);
  t.ok(base.groups.size === 5);
  fc.assert(
    fc.property(fc.shuffledSubarray([1, 2, 3, 4, 5], { minLength: 5, maxLength: 5 }), fc.boolean(), (order, networksReversed) => {
      const m = contested(overlays(order));
      const ordered = new Map(networksReversed ? [...m].reverse() : [...m]);
      return JSON.stringify([...remoteDesired(DEFAULT_VTEP_CONFIG, undefined, ordered).groups]) === expected;
    }),
    { numRuns: 50 },
  );
});

t.test('malformed entries are reported by field and left out; the rest is used', async (t) => {
  const m = new Map<string, unknown>([
    [
      'dcos',
      {
        '44.128.0.2': entry(2),
        '44.128.0.3': entry(3, { agentIp: '300.1.1.1' }),
        '44.128.0.4': entry(4, { vtepMac: 'zz' }),
        '44.128.0.5': entry(5, { subnet: '9.0.5.1/24' }),
        '44.128.0.6': entry(6, { nodeId: 7 }),
        '44.128.0.7': 'nope',
        'fd00::1': entry(8),
        '44.128.0.10': { agentIp: '192.0.2.10', vtepMac: vtepMac('44.128.0.10'), nodeId: 'n10' },
        '44.128.0.11': entry(11, { subnet6: 'fd01:b:0:0:11::/80' }),
      },
    ],
    ['broken', [1, 2]],
  ]);
  const { groups, problems } = remoteDesired(DEFAULT_VTEP_CONFIG, undefined, m);
  t.same([...groups.keys()], ['agent/44.128.0.2']);
  t.ok(problems.every((p) => p instanceof RoutesError && p.code === RoutesErrorCode.InvalidEntry));
  t.same(
    problems.map((p) => (p.details as { field?: string }).field ?? (p.details as { network: string }).network),
    ['broken', 'agentIp', 'vtepMac', 'subnet', 'nodeId', 'entry', 'subnet', 'vtepIp6', 'key'],
  );
  t.match(problems[1]?.message, /overlay\/dcos\[44\.128\.0\.3\]\.agentIp = "300\.1\.1\.1" is not valid; expected an IPv4 or IPv6 address/);
  t.throws(() => parseOverlayEntry('dcos', '44.128.0.2', entry(2, { agentIp: 'x'.repeat(100) })), { code: RoutesErrorCode.InvalidEntry });
});

t.test('contested claims: the lower VTEP IP keeps them, everywhere the same', async (t) => {
  const m = new Map<string, unknown>([
    [
      'dcos',
      {
        '44.128.0.2': entry(2),
        '44.128.0.20': entry(20, { subnet: '9.0.2.0/24' }),
        '44.128.0.30': entry(30, { vtepMac: vtepMac('44.128.0.2'), subnet: '9.0.30.0/24' }),
        '44.128.0.40': entry(40, { subnet: '9.0.1.0/24' }),
      },
    ],
    ['other', { '44.128.0.2': entry(2, { agentIp: '192.0.2.99', subnet: '10.0.2.0/24' }) }],
  ]);
  const { groups, problems } = remoteDesired(DEFAULT_VTEP_CONFIG, '44.128.0.1', m, ['9.0.1.0/24']);
  t.same([...groups.keys()], ['agent/44.128.0.2', 'agent/44.128.0.20', 'agent/44.128.0.40']);
  t.same(groups.get('agent/44.128.0.20')?.routes, [], 'the later claimant of 9.0.2.0/24 gets no route');
  t.same(groups.get('agent/44.128.0.40')?.routes, [], "a claim on this node's own subnet is refused");
  t.same(groups.get('agent/44.128.0.2')?.fdb[0]?.dst, '192.0.2.2', "the first network's agentIp is used");
  t.same(groups.get('agent/44.128.0.2')?.routes.length, 2, 'both networks route to agent 2');
  t.ok(problems.every((p) => p.code === RoutesErrorCode.Conflict));
  t.equal(problems.length, 4);
  t.match(problems.map((p) => p.message).join('\n'), /already held by 44\.128\.0\.2[\s\S]*already used by 44\.128\.0\.2[\s\S]*already held by this node/);
});
