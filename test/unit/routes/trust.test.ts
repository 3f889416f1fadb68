import t from 'tap';
import type { Lease } from '../../../src/ipam/index.js';
import { TrustCache, untrustedReason, type EntryAuthority } from '../../../src/routes/index.js';

const a2: Lease = {
  agent: 'a2',
  vtepIp: '44.128.0.2',
  vtepIp6: 'fd01:a::2',
  vtepMac: '70:b3:d5:80:00:02',
  networks: { dcos: { subnet: '9.0.1.0/24' }, dcos6: { subnet6: 'fd01:b:0:0:1::/80' } },
} as unknown as Lease;
const authority = (underlay: string | undefined = '192.0.2.12'): EntryAuthority => ({
  allocation: (agent) => (agent === 'a2' ? a2 : undefined),
  underlay: (agent) => (agent === 'a2' ? underlay : undefined),
});
const entry = { agentIp: '192.0.2.12', vtepMac: '70:b3:d5:80:00:02', subnet: '9.0.1.0/24', nodeId: 'a2' };

t.test('an entry matching its allocation and membership is trusted', async (t) => {
  t.equal(untrustedReason('dcos', '44.128.0.2', entry, authority()), undefined);
  t.equal(
    untrustedReason('dcos6', '44.128.0.2', { agentIp: '192.0.2.12', vtepMac: '70:B3:D5:80:00:02', subnet6: 'fd01:b:0:0:1::/80', vtepIp6: 'fd01:a::2', nodeId: 'a2' }, authority()),
    undefined,
    'MAC case aside',
  );
  t.equal(untrustedReason('dcos', '44.128.0.2', entry, authority(undefined)), undefined, 'an agent membership forgot is checked against its allocation only');
  t.equal(untrustedReason('dcos', '44.128.0.2', 'garbage', authority()), undefined, 'malformed entries are left to the entry parser');
  t.equal(untrustedReason('dcos', '44.128.0.2', { ...entry, nodeId: 7 }, authority()), undefined);
});

t.test('every contradiction is named', async (t) => {
  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    ['dcos', '44.128.0.2', { ...entry, nodeId: 'rogue' }, /no allocation for rogue/],
    ['dcos', '44.128.0.1', entry, /VTEP address 44\.128\.0\.1 is not a2's \(44\.128\.0\.2\)/],
    ['dcos', '44.128.0.2', { ...entry, vtepMac: '70:b3:d5:00:00:66' }, /VTEP MAC .* is not a2's/],
    ['extra', '44.128.0.2', entry, /a2 holds no block of extra/],
    ['dcos', '44.128.0.2', { ...entry, subnet: '9.0.9.0/24' }, /subnet 9\.0\.9\.0\/24 of dcos is not a2's \(9\.0\.1\.0\/24\)/],
    ['dcos', '44.128.0.2', { ...entry, subnet6: 'fd01:b::/80' }, /IPv6 subnet .* is not a2's/],
    ['dcos', '44.128.0.2', { ...entry, vtepIp6: 'fd01:a::66' }, /VTEP IPv6 address fd01:a::66 is not a2's/],
    ['dcos', '44.128.0.2', { ...entry, agentIp: '192.0.2.66' }, /underlay address 192\.0\.2\.66 is not a2's \(192\.0\.2\.12/],
  ];
  for (const [network, vtepIp, e, pattern] of cases) t.match(untrustedReason(network, vtepIp, e, authority()), pattern);
});

t.test("with a pinned identity, the entry must carry its agent's signature", async (t) => {
  const pinned = { ...a2, peerId: 'peer-a2' } as Lease;
  const asked: string[] = [];
  const signed: EntryAuthority = {
    allocation: (agent) => (agent === 'a2' ? pinned : undefined),
    underlay: () => '192.0.2.12',
    signatureProblem: (network, vtepIp, raw, peerId) => {
      asked.push(`${network} ${vtepIp} ${peerId}`);
      return (raw as { sig?: unknown }).sig === 'good' ? undefined : 'not signed by peer-a2';
    },
  };
  t.equal(untrustedReason('dcos', '44.128.0.2', { ...entry, sig: 'good' }, signed), undefined);
  t.equal(untrustedReason('dcos', '44.128.0.2', entry, signed), 'not signed by peer-a2');
  t.same(asked, ['dcos 44.128.0.2 peer-a2', 'dcos 44.128.0.2 peer-a2'], "checked against the allocation's identity");
  t.equal(untrustedReason('dcos', '44.128.0.2', entry, { ...signed, allocation: () => a2 }), undefined, 'a lease with no pinned identity is not checked for a signature');
});

t.test('the trust cache checks an unchanged entry once, and again when anything it depends on changes', async (t) => {
  let allocation = { ...a2, peerId: 'peer-a2' } as Lease;
  let underlay = '192.0.2.12';
  let checks = 0;
  const counted: EntryAuthority = {
    allocation: (agent) => (agent === 'a2' ? allocation : undefined),
    underlay: () => underlay,
    signatureProblem: (_network, _vtepIp, raw) => {
      checks++;
      return (raw as { sig?: unknown }).sig === 'good' ? undefined : 'not signed by peer-a2';
    },
  };
  const cache = new TrustCache();
  const stored = { ...entry, sig: 'good' };
  t.equal(cache.reason('dcos', '44.128.0.2', stored, counted), undefined);
  t.equal(cache.reason('dcos', '44.128.0.2', stored, counted), undefined);
  t.equal(checks, 1, 'the same entry object, allocation and underlay: one check');
  t.equal(cache.reason('dcos', '44.128.0.2', { ...stored, sig: 'forged' }, counted), 'not signed by peer-a2', 'a new object is checked, however alike');
  t.match(cache.reason('dcos', '44.128.0.9', stored, counted), /VTEP address 44\.128\.0\.9 is not a2's/, 'the same object under another key is checked there');
  t.match(cache.reason('extra', '44.128.0.2', stored, counted), /no block of extra/, 'and under another network');
  allocation = { ...allocation, networks: { dcos: { subnet: '9.0.7.0/24' } } } as Lease;
  t.match(cache.reason('dcos', '44.128.0.2', stored, counted), /subnet 9\.0\.1\.0\/24 of dcos is not a2's \(9\.0\.7\.0\/24\)/, 'a new allocation object: checked again');
  allocation = { ...a2, peerId: 'peer-a2' } as Lease;
  underlay = '192.0.2.99';
  t.match(cache.reason('dcos', '44.128.0.2', stored, counted), /underlay address 192\.0\.2\.12 is not a2's \(192\.0\.2\.99/, 'a moved underlay: checked again');
  const before = checks;
  t.match(cache.reason('dcos', '44.128.0.2', stored, counted), /underlay address/);
  t.equal(checks, before, 'and that verdict is reused in turn');
  t.equal(cache.reason('dcos', '44.128.0.2', 'garbage', counted), undefined, 'a value that is no object is left to the parser, uncached');
});
