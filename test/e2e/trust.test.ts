/**
 * Issue 17 item 3: one agent (holding the cluster key, with an allocation of its own) tries to
 * overwrite another agent's rows in the store, and to take its identity at the masters. Every
 * other replica refuses the writes; the masters refuse the lease request. Daemons in this
 * process on 127.0.0.1, agents on fake kernels.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RealClock } from '../../src/common/index.js';
import { FakeKernel, LASHUP_ROUTE_PROTOCOL } from '../../src/dataplane/index.js';
import type { DaemonConfig } from '../../src/daemon/index.js';
import { daemonStarter } from '../helpers/daemons.js';
import { signerFromSeed } from '../../src/identity/index.js';
import { IpamErrorCode, IPAM_PROTOCOL, RAFT_PROTOCOL, decodeResult, encodeLeaseRequest } from '../../src/ipam/index.js';
import { pack } from 'msgpackr';
import { ALLOCATIONS_KEY, checkAnnouncement, publishCniUsage, publishOverlayEntry, rowSignature, signRow } from '../../src/keyspace/index.js';
import { generateClusterKey, RpcClient } from '../../src/net/index.js';
import { until } from '../helpers/until.js';
import { localDaemonConfig } from '../helpers/daemon-config.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-trust-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const key = generateClusterKey();

function config(name: string, role: 'master' | 'agent', underlayIp: string, seeds: string[], masters?: string[]): DaemonConfig {
  const c = localDaemonConfig({ dir, key, label: 'trust-test', ...(masters === undefined ? {} : { masters }) }, name, role, underlayIp, seeds);
  c.api.port = 0;
  return c;
}

t.test("an agent cannot overwrite another agent's rows or take its identity", async (t) => {
  const { start, seedOf } = daemonStarter(t);
  const m1 = await start(config('m1', 'master', '127.0.0.1', []));
  const seed = seedOf(m1);
  const k1 = new FakeKernel();
  const a1 = await start(config('a1', 'agent', '192.0.2.11', [seed]), k1);
  const a2 = await start(config('a2', 'agent', '192.0.2.12', [seed]), new FakeKernel());
  const rogue = await start(config('a3', 'agent', '192.0.2.13', [seed]), new FakeKernel());
  await until(() => [a1, a2, rogue].every((d) => d.lease !== undefined), 30_000, 'every agent leased');
  const a2Lease = a2.lease as NonNullable<typeof a2.lease>;
  const sub2 = a2Lease.networks['dcos']?.subnet as string;
  const routeToA2 = (): boolean => k1.state().routes.some((r) => `${r.dst}/${r.prefixLen}` === sub2 && r.gateway === a2Lease.vtepIp && r.protocol === LASHUP_ROUTE_PROTOCOL);
  await until(routeToA2, 20_000, 'a1 routes to a2');

  t.equal(a2Lease.peerId, a2.node.libp2p.peerId, "the masters pinned a2's identity: the peer id its lease request came from");
  const key2 = 'overlay/dcos';
  const honest = [m1, a1, a2];
  const a2Row = () => honest.map((d) => d.node.kv.get(key2)?.[a2Lease.vtepIp] as { agentIp?: string; sig?: unknown } | undefined);
  await until(() => a2Row().every((row) => row?.agentIp === '192.0.2.12' && rowSignature(row) !== undefined), 10_000, "a2's signed entry on every honest node");
  const usage = () => honest.map((d) => d.node.kv.get('cni-usage/dcos')?.['a2']);
  await until(() => usage().every((u) => u !== undefined), 10_000, "a2's address usage on every honest node");
  const usageBefore = usage()[0];
  const refusedBefore = honest.map((d) => d.node.kv.stats.writesRefused);
  const refusedEverywhere = async (count: number, what: string): Promise<void> => {
    await until(() => honest.every((d, i) => d.node.kv.stats.writesRefused >= (refusedBefore[i] as number) + count), 10_000, `${what}: refused on m1, a1 and a2`);
  };

  // 1. An unsigned overwrite of a2's entry, pointing a2's subnet at the rogue's underlay.
  const forged = { agentIp: '192.0.2.13', vtepMac: a2Lease.vtepMac, subnet: sub2, nodeId: 'a2' };
  publishOverlayEntry(rogue.node.kv, 'dcos', a2Lease.vtepIp, forged);
  await refusedEverywhere(1, 'an unsigned overwrite');
  // 2. The same, signed with the rogue's own key (it has one: its peer key).
  rogue.node.kv.update(key2, (m) =>
    m.lww(a2Lease.vtepIp).write(rogue.node.kv.marker(), signRow(signerFromSeed(new Uint8Array(32).fill(3)), key2, a2Lease.vtepIp, forged, Date.now() * 1000 + 10_000_000)),
  );
  await refusedEverywhere(2, 'an overwrite signed by another key');
  // 3. Removing a2's entry.
  rogue.node.kv.update(key2, (m) => m.remove(a2Lease.vtepIp));
  await refusedEverywhere(3, 'a removal');
  // 4. Overwriting a2's address usage (a scheduler would think a2 full).
  publishCniUsage(rogue.node.kv, 'dcos', 'a2', { used: 64, total: 64, exhausted: true });
  await refusedEverywhere(4, 'an overwrite of the usage row');
  // 5. Anti-entropy with the rogue does not bring the forgeries either.
  const rogueAddress = rogue.node.libp2p.multiaddrs[0] as string;
  const refusedBeforeRound = a1.node.kv.stats.writesRefused;
  const round = await new Promise<{ error: unknown; keysRepaired: number }>((resolve) =>
    a1.node.antiEntropy.round(rogueAddress, (error, report) => resolve({ error, keysRepaired: report.keysRepaired })),
  );
  t.equal(round.error, undefined, 'a1 ran an anti-entropy round with the rogue');
  t.ok(a1.node.kv.stats.writesRefused > refusedBeforeRound, "and refused the rogue's copies of a2's rows");

  t.same(
    a2Row().map((row) => row?.agentIp),
    ['192.0.2.12', '192.0.2.12', '192.0.2.12'],
    "every honest store still holds a2's own entry",
  );
  t.same(usage(), [usageBefore, usageBefore, usageBefore], "and a2's own usage row");
  t.ok(routeToA2(), "a1 still routes a2's subnet to a2");
  t.notOk(
    k1.state().fdb.some((f) => f.dst === '192.0.2.13' && f.mac === a2Lease.vtepMac),
    "a1 never sent a2's MAC to the rogue",
  );
  const metrics = await (await fetch(`http://127.0.0.1:${a1.api.port}/metrics`)).text();
  t.match(metrics, /^lashup_row_admission_refused_total\{reason="unsigned"\} [1-9]/m, 'a1 counts the unsigned overwrites');
  t.match(metrics, /^lashup_row_admission_refused_total\{reason="forged"\} [1-9]/m, 'and the forged signature');
  t.match(metrics, /^lashup_row_admission_refused_total\{reason="removal"\} [1-9]/m, 'and the removal');
  t.match(metrics, /^lashup_kv_writes_refused_total [1-9]/m);
  t.equal(m1.rowAdmission?.stats.refused.unsigned !== undefined && m1.rowAdmission.stats.refused.unsigned > 0, true, 'the master refuses them too');

  // 6. Allocation announcements: m1 announced a2's lease, signed with its own identity; a
  // forged announcement (the rogue's key, naming m1) is not taken, and a1 keeps routing to a2.
  const announced = m1.node.kv.get(ALLOCATIONS_KEY)?.['a2'];
  t.match(announced, { agent: 'a2', vtepIp: a2Lease.vtepIp, by: 'm1' }, "m1 announced a2's allocation");
  const identity = a1.node.identity as NonNullable<typeof a1.node.identity>;
  t.equal(checkAnnouncement('a2', announced, { masterIdentity: (name) => a1.node.masterIds?.pinned(name), verifier: identity.verifier }).ok, true, 'signed by the identity a1 pinned for m1');
  const view = a1.allocationView as NonNullable<typeof a1.allocationView>;
  const refusedAnnouncements = view.stats.announcementsRefused;
  const fakeAllocation = JSON.parse(JSON.stringify({ ...a2Lease, vtepIp: '44.128.0.250', by: 'm1' })) as Record<string, unknown>;
  rogue.node.kv.update(ALLOCATIONS_KEY, (m) =>
    m.lww('a2').write(rogue.node.kv.marker(), signRow(signerFromSeed(new Uint8Array(32).fill(3)), ALLOCATIONS_KEY, 'a2', fakeAllocation, Date.now() * 1000 + 20_000_000) as never),
  );
  await until(() => view.stats.announcementsRefused > refusedAnnouncements, 10_000, 'a1 refuses the forged announcement');
  t.equal(view.allocation('a2')?.vtepIp, a2Lease.vtepIp, "a1 keeps a2's real allocation");
  t.ok(routeToA2(), 'and its route to a2');
  t.match(await (await fetch(`http://127.0.0.1:${a1.api.port}/metrics`)).text(), /^lashup_allocation_view_announcements_refused_total [1-9]/m, 'a1 counts the refusal');

  // 7. The rogue asks the masters for a2's lease, to be handed a2's addresses and identity.
  const rpc = new RpcClient(rogue.node.libp2p, new RealClock(), IPAM_PROTOCOL, 5000);
  t.teardown(() => rpc.close());
  const answer = decodeResult(await rpc.call(m1.node.libp2p.multiaddrs[0] as string, encodeLeaseRequest('allocate', 'a2')));
  t.match(
    answer,
    { ok: false, error: { code: IpamErrorCode.IdentityMismatch, details: { agent: 'a2', pinned: a2.node.libp2p.peerId, presented: rogue.node.libp2p.peerId } } },
    "the masters refuse a2's lease to another identity",
  );
  t.equal(m1.node.allocator?.stats.identityRefused, 1, 'and count the refusal');

  // 8. Raft messages claiming to come from master m1 are dropped by m1 unless they come from
  // m1's own identity (a forged AppendEntries would rewrite the allocation state).
  const raft = new RpcClient(rogue.node.libp2p, new RealClock(), RAFT_PROTOCOL, 5000);
  t.teardown(() => raft.close());
  await raft.call(m1.node.libp2p.multiaddrs[0] as string, Uint8Array.from(pack(['m1', new Uint8Array([1, 2, 3])])));
  await until(() => (m1.node.allocator?.stats.raftSenderRefused ?? 0) > 0, 5000, "m1 drops a Raft message in m1's name from the rogue");
  t.equal(a1.node.masterIds?.pinned('m1'), m1.node.libp2p.peerId, "a1 pinned m1's identity at first contact");

  // 9. A member claiming the master role under a name that is not a master's is not asked.
  const fake = await start(config('m9', 'master', '192.0.2.19', [seed], ['m1', 'm9']));
  await until(() => a1.node.membership.member('m9')?.state === 'alive', 10_000, 'a1 sees m9');
  t.same(
    a1.node.masterInfos().map((m) => m.name),
    ['m1'],
    'a1 asks m1 only, not a member that merely claims the master role',
  );
  t.ok(fake.node.allocator !== undefined, 'the fake runs an allocator of its own');

  // a2 still owns its rows: its own next write goes through everywhere.
  publishCniUsage(a2.node.kv, 'dcos', 'a2', { used: 1, total: 64, exhausted: false }, a2.node.identity?.signer);
  await until(() => usage().every((u) => (u as { used?: number } | undefined)?.used === 1), 10_000, "a2's own new write reaches every honest node");
});
