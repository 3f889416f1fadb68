import t from 'tap';
import { PeerIdVerifier, signerFromSeed } from '../../../src/identity/index.js';
import { canonicalJson, OwnedRowsAdmission, publishCniUsage, publishOverlayEntry, rowSignature, rowSignatureProblem, signRow, type RowOwnership } from '../../../src/keyspace/index.js';
import { KvStore, kvConfig } from '../../../src/kv/index.js';
import { Scheduler } from '../../../src/sim/index.js';

const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const a2 = signerFromSeed(seed(2));
const rogue = signerFromSeed(seed(9));
const verifier = new PeerIdVerifier();
const entry = { agentIp: '192.0.2.12', vtepMac: '70:b3:d5:80:00:02', subnet: '9.0.1.0/24', nodeId: 'a2' };

t.test('canonical JSON does not depend on field order', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), canonicalJson({ a: [{ c: null, d: 2 }], b: 1 }));
  t.equal(canonicalJson({ a: undefined }), '{"a":null}');
  t.equal(canonicalJson(new Uint8Array([1, 2])), '{"bytes":"AQI="}');
});

t.test('a signed row verifies for its owner, its key and field only', async (t) => {
  const signed = signRow(a2, 'overlay/dcos', '44.128.0.2', entry, 1000);
  t.same(rowSignature(signed)?.ts, 1000);
  t.equal(rowSignatureProblem(verifier, a2.identity, 'overlay/dcos', '44.128.0.2', signed), undefined);
  t.equal(rowSignatureProblem(verifier, a2.identity, 'overlay/dcos', '44.128.0.2', { ...signed, nodeId: 'a2', agentIp: '192.0.2.12' }), undefined, 'field order does not matter');
  t.match(rowSignatureProblem(verifier, rogue.identity, 'overlay/dcos', '44.128.0.2', signed), /not signed by its owner's identity/);
  t.match(rowSignatureProblem(verifier, a2.identity, 'overlay/dcos', '44.128.0.3', signed), /not signed/, 'moved to another field');
  t.match(rowSignatureProblem(verifier, a2.identity, 'overlay/other', '44.128.0.2', signed), /not signed/, 'moved to another key');
  t.match(rowSignatureProblem(verifier, a2.identity, 'overlay/dcos', '44.128.0.2', { ...signed, agentIp: '192.0.2.66' }), /not signed/, 'a changed field');
  t.match(rowSignatureProblem(verifier, a2.identity, 'overlay/dcos', '44.128.0.2', entry), /carries no signature/);
  t.match(rowSignatureProblem(verifier, a2.identity, 'overlay/dcos', '44.128.0.2', 'text'), /not an object/);
  t.match(rowSignatureProblem(verifier, a2.identity, 'overlay/dcos', '44.128.0.2', { ...entry, sig: { ts: -1, s: 'x' } }), /carries no signature/, 'a malformed signature');
});

function ownership(contested: string[]): RowOwnership {
  const leases = new Map([
    ['a2', { agent: 'a2', vtepIp: '44.128.0.2', peerId: a2.identity }],
    ['old', { agent: 'old', vtepIp: '44.128.0.7' }],
  ]);
  return {
    byAgent: (agent) => leases.get(agent),
    byVtep: (vtepIp) => [...leases.values()].find((l) => l.vtepIp === vtepIp),
    contested: (agent) => contested.push(agent),
  };
}

t.test("the admission check refuses every other member's write over an owned row", async (t) => {
  const contested: string[] = [];
  const check = new OwnedRowsAdmission(ownership(contested), verifier);
  const key = 'overlay/dcos';
  const field = '44.128.0.2';
  const v1 = signRow(a2, key, field, entry, 1000);
  const v2 = signRow(a2, key, field, { ...entry, agentIp: '192.0.2.13' }, 2000);
  t.ok(check.guards(key) && check.guards('cni-usage/dcos') && !check.guards('overlay-config'));
  t.equal(check.refuse(key, [{ name: field, before: undefined, after: v1 }]), undefined, "the owner's signed row passes");
  t.equal(check.refuse(key, [{ name: field, before: v1, after: v2 }]), undefined, 'and its newer one');
  t.match(check.refuse(key, [{ name: field, before: v2, after: { ...entry, agentIp: '192.0.2.66' } }]), /a2's row refused: .*carries no signature/, 'an unsigned overwrite is refused');
  t.match(check.refuse(key, [{ name: field, before: v2, after: signRow(rogue, key, field, entry, 3000) }]), /not signed by its owner's identity/, "a write signed by someone else's key is refused");
  t.match(check.refuse(key, [{ name: field, before: v2, after: v1 }]), /not newer than the one held/, 'an old signed value replayed is refused');
  t.match(check.refuse(key, [{ name: field, before: v2, after: undefined }]), /still holds an allocation/, 'a removal is refused while the owner holds its allocation');
  t.same(check.stats.refused, { unsigned: 1, forged: 1, replayed: 1, removal: 1 });
  t.same(contested, ['a2', 'a2', 'a2', 'a2'], 'each refusal asks for the owner allocation again');
  t.equal(check.refuse(key, [{ name: field, before: { ...entry }, after: v1 }]), undefined, 'an unsigned value held may be replaced by a signed one');
  t.equal(check.refuse(key, [{ name: '44.128.0.9', before: undefined, after: entry }]), undefined, 'a row with no known owner passes (readers check it)');
  t.equal(check.refuse(key, [{ name: '44.128.0.7', before: entry, after: undefined }]), undefined, 'so does a row whose owner has no pinned identity');
  t.equal(check.stats.unknownOwner, 2);
  t.match(
    check.refuse('cni-usage/dcos', [{ name: 'a2', before: undefined, after: { used: 1, total: 2, exhausted: false } }]),
    /carries no signature/,
    'usage rows are owned by the agent they are named after',
  );
});

t.test('writers sign their rows; an unchanged row is not written again, and a clock stepped back still writes a newer signature', async (t) => {
  const scheduler = new Scheduler({ epochMs: 1_700_000_000_000 });
  const kv = new KvStore({ actor: 'a2', clock: scheduler.clock(), config: kvConfig() });
  t.ok(publishOverlayEntry(kv, 'dcos', '44.128.0.2', entry, a2));
  const first = kv.get('overlay/dcos')?.['44.128.0.2'];
  t.equal(rowSignatureProblem(verifier, a2.identity, 'overlay/dcos', '44.128.0.2', first), undefined);
  t.notOk(publishOverlayEntry(kv, 'dcos', '44.128.0.2', entry, a2), 'unchanged: not written');
  // A row signed far in the future (a clock that was ahead) is followed by a newer signature anyway.
  kv.update('overlay/dcos', (m) => m.lww('44.128.0.2').write(kv.marker(), signRow(a2, 'overlay/dcos', '44.128.0.2', entry, 9e15)));
  t.ok(publishOverlayEntry(kv, 'dcos', '44.128.0.2', { ...entry, agentIp: '192.0.2.14' }, a2));
  t.equal(rowSignature(kv.get('overlay/dcos')?.['44.128.0.2'])?.ts, 9e15 + 1);
  t.ok(publishCniUsage(kv, 'dcos', 'a2', { used: 1, total: 10, exhausted: false }, a2));
  t.equal(rowSignatureProblem(verifier, a2.identity, 'cni-usage/dcos', 'a2', kv.get('cni-usage/dcos')?.['a2']), undefined);
});
