/**
 * Daemons in one process on 127.0.0.1 (a master and two agents, each agent on a fake kernel):
 * the overlay loop end to end without root, and every API route and CLI command against it.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { EXIT, run } from '../../src/cli/index.js';
import { FakeKernel, LASHUP_ROUTE_PROTOCOL } from '../../src/dataplane/index.js';
import { Daemon, type DaemonConfig } from '../../src/daemon/index.js';
import { DEFAULT_OVERLAY_CONFIG } from '../../src/ipam/index.js';
import { publishOverlayEntry, removeAgentEntries } from '../../src/keyspace/index.js';
import { generateClusterKey } from '../../src/net/index.js';
import { FakeNft } from '../../src/testing/index.js';
import { eventually } from '../helpers/netns.js';
import { until } from '../helpers/until.js';
import { localDaemonConfig } from '../helpers/daemon-config.js';
import { freePort } from '../helpers/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-daemon-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const key = generateClusterKey();
// One TCP API token for every daemon of this file (api.tokenFile), so helpers can use it.
const tokenFile = join(dir, 'api.token');
const token = 'daemon-test-token-0123456789';
writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
const auth = { authorization: `Bearer ${token}` };

function config(name: string, role: 'master' | 'agent', underlayIp: string, seeds: string[]): DaemonConfig {
  return localDaemonConfig({ dir, key, label: 'daemon-test', tokenFile }, name, role, underlayIp, seeds);
}

function capture(): { io: { out(s: string): void; err(s: string): void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (s) => (out += s), err: (s) => (err += s) }, out: () => out, err: () => err };
}

async function cli(port: number, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = capture();
  const code = await run([...args, '--api', `127.0.0.1:${port}`, '--token-file', tokenFile], c.io);
  return { code, out: c.out(), err: c.err() };
}

t.test('a master and two agents: leases, routes on the fake kernels, API, CLI, release', async (t) => {
  const daemons: Daemon[] = [];
  t.teardown(() => Promise.all(daemons.map((d) => d.stop(false))));
  const start = async (c: DaemonConfig, kernel?: FakeKernel): Promise<Daemon> => {
    c.api.port = 0;
    const d = await Daemon.start(c, { ...(kernel === undefined ? {} : { kernel }), firewall: false });
    daemons.push(d);
    return d;
  };
  const master = await start(config('m1', 'master', '127.0.0.1', []));
  const seed = `127.0.0.1:${/\/tcp\/(\d+)/.exec(master.node.libp2p.multiaddrs[0] ?? '')?.[1]}`;
  const k1 = new FakeKernel();
  const k2 = new FakeKernel();
  const a1 = await start(config('a1', 'agent', '192.0.2.11', [seed]), k1);
  const a2 = await start(config('a2', 'agent', '192.0.2.12', [seed]), k2);
  await until(() => a1.lease !== undefined && a2.lease !== undefined, 30_000, 'both agents leased');
  const routeTo = (k: FakeKernel, subnet: string | undefined): boolean => k.state().routes.some((r) => `${r.dst}/${r.prefixLen}` === subnet && r.protocol === LASHUP_ROUTE_PROTOCOL);
  const sub1 = a1.lease?.networks['dcos']?.subnet;
  const sub2 = a2.lease?.networks['dcos']?.subnet;
  await until(() => routeTo(k1, sub2) && routeTo(k2, sub1), 20_000, 'each agent routes to the other');
  t.ok(k1.linkByName('vtep1024'), 'a1 made its VTEP');
  t.same(
    k1.state().fdb.map((f) => f.dst),
    ['192.0.2.12'],
    "a1's FDB sends a2's MAC to a2's underlay address",
  );

  // A rogue member (it holds the cluster key: any node can write the store) publishes forged
  // entries: one claims a2's subnet under a lower VTEP address (which would win the conflict
  // rule), one claims a subnet nobody was given, one claims to be a2 from another underlay.
  const rogueKv = master.node.kv;
  const a2Lease = a2.lease as NonNullable<typeof a2.lease>;
  publishOverlayEntry(rogueKv, 'dcos', '44.128.0.0', { agentIp: '192.0.2.66', vtepMac: '70:b3:d5:00:00:66', subnet: sub2 as string, nodeId: 'rogue' });
  publishOverlayEntry(rogueKv, 'dcos', '44.128.0.99', { agentIp: '192.0.2.66', vtepMac: '70:b3:d5:00:00:99', subnet: '9.0.200.0/24', nodeId: 'nobody' });
  publishOverlayEntry(rogueKv, 'dcos', '44.128.0.98', { agentIp: '192.0.2.66', vtepMac: a2Lease.vtepMac, subnet: sub2 as string, nodeId: 'a2' });
  await until(() => (a1.overlayAgent?.stats.untrusted ?? 0) === 3, 10_000, 'a1 refuses the three forgeries');
  const k1State = k1.state();
  t.notOk(routeTo(k1, '9.0.200.0/24'), 'no route to a subnet the masters never gave');
  t.same(
    k1State.routes.filter((r) => `${r.dst}/${r.prefixLen}` === sub2).map((r) => r.gateway),
    [a2Lease.vtepIp],
    "a2's subnet still goes to a2's VTEP, not the rogue's lower address",
  );
  t.same(
    [...k1State.fdb.map((f) => f.dst), ...k1State.neighbours.map((n) => n.mac)].filter((x): x is string => x !== undefined && (x === '192.0.2.66' || /00:00:(66|99)$/.test(x))),
    [],
    'no FDB or neighbour entry points at the rogue',
  );
  const report = JSON.parse((await cli(a1.api.port, 'routes')).out) as { untrusted: { vtepIp: string; reason: string }[] };
  t.same(report.untrusted.map((u) => u.vtepIp).sort(), ['44.128.0.0', '44.128.0.98', '44.128.0.99'], '`lashup routes` lists them as untrusted');
  t.match(report.untrusted.find((u) => u.vtepIp === '44.128.0.98')?.reason, /VTEP address 44\.128\.0\.98 is not a2's/);
  t.match(report.untrusted.find((u) => u.vtepIp === '44.128.0.99')?.reason, /no allocation for nobody/);
  t.match(await (await fetch(`http://127.0.0.1:${a1.api.port}/metrics`)).text(), /^lashup_overlay_untrusted 3$/m, 'and counts them');
  for (const vtepIp of ['44.128.0.0', '44.128.0.99', '44.128.0.98']) removeAgentEntries(rogueKv, vtepIp);
  await until(() => a1.overlayAgent?.stats.untrusted === 0, 10_000, 'the forgeries removed');
  t.ok(routeTo(k1, sub2), "and a2's route stayed throughout");
  // Overwrites of an agent's own rows by another member: test/e2e/trust.test.ts.

  // Container addresses through the daemon's CNI socket: IPv4 from dcos, IPv6 from dcos6.
  const { runPlugin, askSocket: ask } = await import('../../src/cni/index.js');
  const cniEnv = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr1', CNI_NETNS: '/run/netns/ctr1', CNI_IFNAME: 'eth0' };
  for (const [network, pattern] of [
    ['dcos', /^9\.0\.\d+\.2\/25$/],
    ['dcos6', /^fd01:b:.*:2\/81$/],
  ] as const) {
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: network, ipam: { type: 'lashup-ipam', socketPath: a1.config.cni.socketPath } });
    const out = await runPlugin(cniEnv, stdin, ask);
    t.equal(out.code, 0, out.stdout);
    t.match((JSON.parse(out.stdout) as { ips: { address: string }[] }).ips[0]?.address, pattern, `${network}: an address from a1's Mesos half`);
    t.ok(existsSync(join(dir, 'a1', 'net.d', `${network}.conflist`)), `${network}.conflist written`);
  }
  await until(() => master.node.kv.get('cni-usage/dcos6')?.['a1'] !== undefined, 10_000, 'usage of dcos6 reaches the master');

  // The API through the CLI.
  const status = await cli(a1.api.port, 'status');
  t.equal(status.code, EXIT.ok);
  t.match(JSON.parse(status.out), { name: 'a1', role: 'agent', lease: { agent: 'a1' }, leaseWaiting: null, dataplane: { remoteAgents: 1 } });
  t.match(JSON.parse((await cli(master.api.port, 'status')).out), { role: 'master', raft: { role: 'leader' } });
  const raftStates: string[] = [];
  master.node.onAllocatorState((s) => raftStates.push(s.role))();
  t.same(raftStates, ['leader'], 'a Raft state subscription replays the current state');
  const members = JSON.parse((await cli(a1.api.port, 'members')).out) as { name: string; state: string; role: string }[];
  t.same(members.map((m) => `${m.name}:${m.state}:${m.role}`).sort(), ['a1:alive:agent', 'a2:alive:agent', 'm1:alive:master']);
  t.match(JSON.parse((await cli(a1.api.port, 'routes')).out), { stats: { converged: true }, conflicts: [], overlay: { remoteAgents: 1 } });
  t.match(JSON.parse((await cli(master.api.port, 'allocations')).out), { leases: [{ agent: 'a1' }, { agent: 'a2' }] });
  t.match(JSON.parse((await cli(a2.api.port, 'allocations')).out), { lease: { agent: 'a2' } });
  const kv = JSON.parse((await cli(a1.api.port, 'kv', 'get', 'overlay/dcos')).out) as { value: Record<string, { nodeId: string }> };
  t.same(
    Object.values(kv.value)
      .map((e) => e.nodeId)
      .sort(),
    ['a1', 'a2'],
    'both entries in overlay/dcos',
  );
  const missing = await cli(a1.api.port, 'kv', 'get', 'no-such-key');
  t.equal(missing.code, EXIT.failed);
  t.match(missing.err, /LASHUP_ERR_NO_SUCH_KEY/);
  t.match((await cli(a1.api.port, 'routes')).code, EXIT.ok);
  t.equal((await cli(master.api.port, 'routes')).code, EXIT.failed, 'a master has no dataplane');

  // Usage, metrics, errors over plain HTTP.
  const get = async (port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { ...auth, ...headers } });
    return { status: res.status, body: await res.text() };
  };
  // Trust (issue 17): over TCP every route but /metrics needs the token; the socket needs none.
  const bare = await fetch(`http://127.0.0.1:${a1.api.port}/v1/status`);
  t.equal(bare.status, 401, 'without the token the TCP API refuses');
  t.match(await bare.json(), { code: 'LASHUP_ERR_UNAUTHORIZED' });
  t.equal(bare.headers.get('www-authenticate'), 'Bearer realm="lashup"');
  t.equal((await fetch(`http://127.0.0.1:${a1.api.port}/v1/status`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401, 'a wrong token too');
  t.equal((await fetch(`http://127.0.0.1:${a1.api.port}/metrics`)).status, 200, '/metrics stays open for scrapers');
  t.equal((await fetch(`http://127.0.0.1:${a1.api.port}/v1/leave`, { method: 'POST', headers: { 'x-lashup-request': '1' } })).status, 401, 'a state-changing request without the token is refused');
  const viaSocket = capture();
  t.equal(await run(['status', '--socket', a1.config.api.socketPath], viaSocket.io), EXIT.ok, 'the CLI works through the socket, no token');
  t.match(JSON.parse(viaSocket.out()), { name: 'a1' });
  t.equal(statSync(a1.config.api.socketPath).mode & 0o777, 0o600, 'the socket is for its owner only');
  // Files that hold the node's identity, lease and state: its owner only (issue 17).
  const modeOf = (p: string): number => statSync(p).mode & 0o777;
  t.equal(modeOf(a1.config.dataDir), 0o700, 'data directory 0700');
  for (const file of ['peer.key', 'lease.json', 'cni-leases.json']) t.equal(modeOf(join(a1.config.dataDir, file)), 0o600, `${file} 0600`);
  const kvFiles = readdirSync(join(a1.config.dataDir, 'kv'));
  t.ok(kvFiles.length > 0, 'store files exist');
  t.same(
    kvFiles.filter((f) => modeOf(join(a1.config.dataDir, 'kv', f)) !== 0o600),
    [],
    'store files 0600',
  );
  t.equal(modeOf(a1.config.cni.socketPath), 0o600, 'CNI socket 0600');
  const noToken = capture();
  t.equal(await run(['status', '--api', `127.0.0.1:${a1.api.port}`, '--token-file', join(dir, 'missing.token')], noToken.io), EXIT.usage, 'a named token file that cannot be read is a usage error');
  const usage = await get(master.api.port, '/v1/overlay/dcos/usage');
  t.equal(usage.status, 200);
  t.match(JSON.parse(usage.body), { network: 'dcos', families: [{ family: 4, used: 2, total: 65_536, free: 65_534 }] });
  t.equal((await get(master.api.port, '/v1/overlay/nope/usage')).status, 404);
  t.equal((await get(a1.api.port, '/v1/overlay/dcos/usage')).status, 409, 'usage is a master question');
  const plainKey = await get(a1.api.port, '/v1/kv/overlay/dcos');
  t.equal(plainKey.status, 200, 'a key with "/" needs no escaping (issue 16)');
  t.match(JSON.parse(plainKey.body), { key: 'overlay/dcos' });
  for (const [d, port] of [
    [a1, a1.api.port],
    [master, master.api.port],
  ] as const) {
    const body = (await get(port, '/metrics')).body;
    t.same(d.metrics.undocumented, [], `${d.config.name}: every stats field has a description in the metric catalog`);
    // Every sample belongs to a family announced with HELP and TYPE, and counters end in _total.
    const types = new Map([...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
    const helps = new Set([...body.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1] as string));
    const orphans: string[] = [];
    for (const line of body.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] as string;
      const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      if (!types.has(family) || !helps.has(family)) orphans.push(name);
      if (types.get(family) === 'counter' && !family.endsWith('_total')) orphans.push(`${name} (a counter without _total)`);
    }
    t.same(orphans, [], `${d.config.name}: no sample without HELP and TYPE`);
    t.match(body, /^process_resident_memory_bytes \d+/m, 'process metrics');
    t.match(body, /^nodejs_eventloop_lag_p99_seconds /m, 'event-loop lag');
    t.match(body, /^lashup_members\{state="alive"\} 3$/m, 'members by state');
    t.match(body, /^lashup_daemon_code_cache_used 0$/m, 'started unbundled: no code cache');
  }
  const metrics = await get(a1.api.port, '/metrics');
  t.match(metrics.body, /^lashup_dataplane_ops_total\{op="route\.replace",result="ok"\} [1-9]/m);
  t.match(metrics.body, /^lashup_overlay_remote_agents 1$/m);
  t.match(metrics.body, /^lashup_lease_held 1$/m);
  t.match(metrics.body, /^lashup_dataplane_apply_duration_seconds_count [1-9]/m, 'apply-time histogram');
  t.match(metrics.body, /^lashup_kv_propagation_delay_seconds_count [1-9]/m, 'store propagation histogram');
  t.match((await get(master.api.port, '/metrics')).body, /^lashup_raft_leader 1$/m);
  const notFound = await get(a1.api.port, '/v2/everything');
  t.equal(notFound.status, 404);
  t.match(JSON.parse(notFound.body), { code: 'LASHUP_ERR_NOT_FOUND' });
  t.equal((await get(a1.api.port, `/v1/kv/${'k'.repeat(600)}`)).status, 400);
  const errorsBefore = a1.api.stats.serverErrors;
  const malformed = await get(a1.api.port, '/v1/kv/%zz');
  t.equal(malformed.status, 400, 'a malformed percent-escape is a client error (issue 14 item 7)');
  t.match(JSON.parse(malformed.body), { code: 'LASHUP_ERR_BAD_REQUEST', message: /malformed percent-escape/ });
  t.equal(a1.api.stats.serverErrors, errorsBefore, 'not counted as a server error');
  t.equal((await get(a1.api.port, '/v1/leave', 'POST')).status, 403, 'a POST without the client header (what a web page can send) is refused');
  t.equal((await get(a1.api.port, '/v1/leave', 'POST', { 'x-lashup-request': 'test' })).status, 409, 'an embedded daemon cannot be asked to leave');

  // Watch a key over server-sent events while an agent's entry changes.
  const events: string[] = [];
  const controller = new AbortController();
  const watching = fetch(`http://127.0.0.1:${a1.api.port}/v1/kv/overlay%2Fdcos?watch=1`, { signal: controller.signal, headers: auth }).then(async (res) => {
    const reader = res.body?.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const chunk = await reader?.read();
      if (chunk === undefined || chunk.done) break;
      events.push(decoder.decode(chunk.value));
    }
  });
  await until(() => events.join('').includes('"initial":true'), 5000, 'the watch starts with the current value');

  // Release a2 on the master: refused while it runs; once it is gone (forced within the grace
  // period), its entry and its routes disappear from a1.
  const refused = await cli(master.api.port, 'allocations', 'release', 'a2');
  t.equal(refused.code, EXIT.failed, 'a running agent is not released');
  t.match(refused.err, /agent a2 is alive .*pass force.*LASHUP_ERR_RELEASE_REFUSED/);
  await a2.stop(false);
  const release = await cli(master.api.port, 'allocations', 'release', 'a2', '--force');
  t.equal(release.code, EXIT.ok, release.err);
  t.match(JSON.parse(release.out), { agent: 'a2', released: true, entriesRemoved: 2, forced: true });
  await until(() => !routeTo(k1, sub2), 20_000, "a2's route leaves a1");
  await until(() => events.join('').includes('"initial":false'), 5000, 'the watch saw the removal');
  controller.abort();
  await watching.catch(() => undefined);
  t.equal((await cli(a1.api.port, 'allocations', 'release', 'a1')).code, EXIT.failed, 'release on an agent is refused');
});

t.test('issue 14 item 3: a forced release of a running agent does not give its addresses to two agents', async (t) => {
  const daemons: Daemon[] = [];
  t.teardown(() => Promise.all(daemons.map((d) => d.stop(false))));
  const start = async (c: DaemonConfig, kernel?: FakeKernel): Promise<Daemon> => {
    c.api.port = 0;
    c.dataDir = join(dir, 'item3', c.name);
    c.cni.socketPath = join(dir, 'item3', `${c.name}.sock`);
    c.cni.confDir = join(dir, 'item3', c.name, 'net.d');
    c.ipam.leaseCheckIntervalMs = 1000;
    const d = await Daemon.start(c, { ...(kernel === undefined ? {} : { kernel }), firewall: false });
    daemons.push(d);
    return d;
  };
  const master = await start(config('m1', 'master', '127.0.0.1', []));
  const seed = `127.0.0.1:${/\/tcp\/(\d+)/.exec(master.node.libp2p.multiaddrs[0] ?? '')?.[1]}`;
  const a1 = await start(config('a1', 'agent', '192.0.2.21', [seed]), new FakeKernel());
  const a2 = await start(config('a2', 'agent', '192.0.2.22', [seed]), new FakeKernel());
  await until(() => a1.lease !== undefined && a2.lease !== undefined, 30_000, 'both agents leased');
  await until(() => master.node.membership.member('a2')?.state === 'alive', 10_000, 'the master sees a2 alive');
  const before = a2.lease;
  await t.rejects(master.release('a2'), { code: 'LASHUP_ERR_RELEASE_REFUSED', message: /agent a2 is alive/ }, 'refused without force');
  t.equal(master.stats.releasesRefused, 1);
  t.match(await master.release('a2', { force: true }), { released: true, forced: true }, 'released with force');
  t.match(await master.release('never-seen'), { released: false }, 'releasing an unknown agent is a no-op');
  t.equal(master.stats.releases, 1, 'and is not counted as a release (issue 14 item 7)');
  // A new agent right away: before the fix it received a2's VTEP address and subnet while a2 kept them.
  const a3 = await start(config('a3', 'agent', '192.0.2.23', [seed]), new FakeKernel());
  await until(() => (a2.node.lease?.stats.lost ?? 0) >= 1, 20_000, 'a2 notices its lease is gone');
  await until(() => a2.lease !== undefined && a3.lease !== undefined, 30_000, 'a2 and a3 hold leases');
  const leases = [a1.lease, a2.lease, a3.lease];
  t.equal(new Set(leases.map((l) => l?.vtepIp)).size, 3, `three distinct VTEP addresses: ${leases.map((l) => l?.vtepIp).join(', ')}`);
  t.equal(new Set(leases.map((l) => l?.networks['dcos']?.subnet)).size, 3, 'three distinct subnets');
  t.same(master.node.allocator?.state.lease('a2'), a2.lease, 'a2 holds exactly what the masters hold for it');
  t.ok(before !== undefined, 'a2 had a lease before');
  await until(
    () =>
      JSON.stringify(
        Object.values(master.node.kv.get('overlay/dcos') ?? {})
          .map((e) => (e as { nodeId: string }).nodeId)
          .sort(),
      ) === '["a1","a2","a3"]',
    20_000,
    'one overlay entry per agent',
  );
  const entries = master.node.kv.get('overlay/dcos') as Record<string, { nodeId: string }>;
  for (const a of [a1, a2, a3]) t.equal(entries[a.lease?.vtepIp as string]?.nodeId, a.config.name, `${a.config.name}'s entry is under its own VTEP address`);
  t.equal(a2.overlayAgent?.stats.leaseLost, 1, 'the overlay agent withdrew the old lease once');
});

t.test('issue 16: the masquerade follows the overlay the masters publish, is put back after a flush, and goes on leave', async (t) => {
  const daemons: Daemon[] = [];
  t.teardown(() => Promise.all(daemons.map((d) => d.stop(false))));
  const base = join(dir, 'firewall');
  const start = async (c: DaemonConfig, options: { kernel?: FakeKernel; firewall?: FakeNft } = {}): Promise<Daemon> => {
    c.api.port = 0;
    c.dataDir = join(base, c.name);
    c.cni.enabled = false;
    c.dataplane.firewallResyncIntervalMs = 1000;
    const d = await Daemon.start(c, { ...(options.kernel === undefined ? {} : { kernel: options.kernel }), firewall: options.firewall ?? false });
    daemons.push(d);
    return d;
  };
  const seedOf = (d: Daemon): string => `127.0.0.1:${/\/tcp\/(\d+)/.exec(d.node.libp2p.multiaddrs[0] ?? '')?.[1]}`;
  const master = await start(config('m1', 'master', '127.0.0.1', []));
  const nft = new FakeNft();
  const a1 = await start(config('a1', 'agent', '192.0.2.31', [seedOf(master)]), { kernel: new FakeKernel(), firewall: nft });
  await until(() => a1.firewall?.stats.converged === true && (nft.tables.get('ip') ?? '').includes('9.0.0.0/8'), 20_000, 'the masquerade of dcos is in place');
  t.notOk(nft.tables.get('ip')?.includes('10.200.0.0/16'), 'no masquerade for a network that is not configured');

  // Someone flushes the ruleset: the next resync (1 s here) notices and puts the tables back.
  const drift = a1.firewall?.stats.drift ?? 0;
  nft.flush();
  await until(() => nft.tables.get('ip') !== undefined && nft.tables.get('ip6') !== undefined, 10_000, 'both tables back after the flush');
  t.ok((a1.firewall?.stats.drift ?? 0) > drift, 'the flush was counted as drift');
  const metrics = await (await fetch(`http://127.0.0.1:${a1.api.port}/metrics`)).text();
  t.match(metrics, /^lashup_firewall_drift_total [1-9]/m, 'drift in /metrics');
  const view = (await (await fetch(`http://127.0.0.1:${a1.api.port}/v1/firewall`, { headers: auth })).json()) as { table: string; desired: string; stats: { drift: number } };
  t.match(view, { table: 'lashup', desired: /ip saddr \{ 9\.0\.0\.0\/8 \}.*masquerade/, stats: { drift: 1 } }, 'GET /v1/firewall: the rules in force and their counters (a component route)');
  t.equal((await fetch(`http://127.0.0.1:${master.api.port}/v1/firewall`, { headers: auth })).status, 404, 'a master has no firewall component');

  // The operator adds a network on the masters and restarts them: the agent's masquerade follows.
  await master.stop(false);
  daemons.splice(daemons.indexOf(master), 1);
  const changed = config('m1', 'master', '127.0.0.1', [seedOf(a1)]);
  changed.overlay = { ...DEFAULT_OVERLAY_CONFIG, networks: [...DEFAULT_OVERLAY_CONFIG.networks, { name: 'extra', subnet: '10.200.0.0/16', prefix: 24 }] };
  await start(changed);
  await until(() => (nft.tables.get('ip') ?? '').includes('10.200.0.0/16'), 30_000, 'the masquerade covers the network the masters published');
  t.match(nft.tables.get('ip'), /9\.0\.0\.0\/8, 10\.200\.0\.0\/16/, 'both networks masqueraded');

  // Leaving removes lashup's tables (a plain stop, e.g. for an upgrade, would keep them).
  await a1.stop(true);
  daemons.splice(daemons.indexOf(a1), 1);
  t.same([...nft.tables.keys()], [], 'no lashup table after the agent left');
});

t.test('CLI usage errors, help, keygen, config reference, unreachable daemon', async (t) => {
  const help = capture();
  t.equal(await run(['--help'], help.io), EXIT.ok);
  t.match(help.out(), /usage: lashup <command>/);
  const none = capture();
  t.equal(await run([], none.io), EXIT.usage);
  const unknown = capture();
  t.equal(await run(['fly'], unknown.io), EXIT.usage);
  t.match(unknown.err(), /unknown command "fly"/);
  const kg = capture();
  t.equal(await run(['keygen'], kg.io), EXIT.ok);
  t.match(kg.out(), /^[A-Za-z0-9+/]{43}=\n$/);
  const ref = capture();
  t.equal(await run(['config-reference'], ref.io), EXIT.ok);
  t.match(ref.out(), /api\.port \(an integer from 1 to 65535; default 62080\)/);
  const badApi = capture();
  t.equal(await run(['status', '--api', 'nowhere'], badApi.io), EXIT.usage);
  t.equal((await cli(9, 'status')).code, EXIT.unreachable, 'nothing listens on port 9');
  t.equal((await cli(9, 'kv', 'watch', 'x')).code, EXIT.unreachable);
  t.equal((await cli(9, 'kv', 'put', 'x')).code, EXIT.usage);
  t.equal((await cli(9, 'allocations', 'drop')).code, EXIT.usage);
  const runHelp = capture();
  t.equal(await run(['run', '--help'], runHelp.io), EXIT.ok);
  t.match(runHelp.out(), /SIGTERM/);
  t.equal(await run(['run'], capture().io), EXIT.usage);
  const missingFile = capture();
  t.equal(await run(['run', '--config', join(dir, 'nope.json')], missingFile.io), EXIT.config);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ name: 'x', role: 'agent', underlayIp: '192.0.2.1', masters: ['m'], cluster: { keys: [key] }, dataplane: { enabled: 'no' } }));
  const bad = capture();
  t.equal(await run(['run', '--config', join(dir, 'bad.json')], bad.io), EXIT.config);
  t.match(bad.err(), /\$\.dataplane\.enabled = "no": expected true or false/);
  // `agent` is the old name of `run`: it still works, and says so.
  const alias = capture();
  t.equal(await run(['agent', `--config=${join(dir, 'bad.json')}`], alias.io), EXIT.config, '--config=FILE works too');
  t.match(alias.err(), /`lashup agent` is now `lashup run`/);

  // Strict parsing (issue 16): unknown options, options a command does not take and extra
  // arguments are usage errors; --api=HOST:PORT is accepted.
  const strict = async (args: string[], pattern: RegExp): Promise<void> => {
    const c = capture();
    t.equal(await run(args, c.io), EXIT.usage, args.join(' '));
    t.match(c.err(), pattern, args.join(' '));
  };
  await strict(['status', '--verbose'], /Unknown option '--verbose'/);
  await strict(['status', '--force'], /--force does not apply to status/);
  await strict(['keygen', '--api', '127.0.0.1:1'], /--api does not apply to keygen/);
  await strict(['status', 'now'], /status takes no arguments; found "now"/);
  await strict(['kv', 'get'], /kv takes 2 to 2 arguments/);
  await strict(['allocations', '--force'], /usage: lashup allocations/);
  await strict(['demo', '--agents', 'many'], /--agents "many" is not valid; expected an integer from 2 to 50/);
  t.equal(await run(['status', '--api=127.0.0.1:9'], capture().io), EXIT.unreachable, '--api=HOST:PORT is parsed');
  const version = capture();
  t.equal(await run(['--version'], version.io), EXIT.ok);
  t.equal(version.out(), `${JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')).version}\n`, 'the version from package.json');
});

t.test('lashup run runs a daemon until it is asked to leave', async (t) => {
  const port = await freePort();
  const file = join(dir, 'solo.json');
  writeFileSync(
    file,
    JSON.stringify({
      name: 'solo',
      role: 'master',
      underlayIp: '127.0.0.1',
      dataDir: join(dir, 'solo'),
      masters: ['solo'],
      cluster: { keys: [key] },
      listen: { bindHost: '127.0.0.1', udpPort: 0, libp2pPort: 0 },
      api: { port, socketPath: join(dir, 'solo', 'api.sock'), tokenFile },
      log: { level: 'silent' },
    }),
  );
  const c = capture();
  const running = run(['run', '--config', file], c.io);
  // The API answering is the event: awaited with a bound.
  let status: { code: number; out: string } = { code: -1, out: '' };
  t.ok(
    await eventually(async () => {
      status = await cli(port, 'status');
      return status.code === EXIT.ok;
    }, 10_000),
    'the daemon API answers',
  );
  t.match(JSON.parse(status.out), { name: 'solo', role: 'master' });
  const leave = await cli(port, 'leave');
  t.equal(leave.code, EXIT.ok);
  t.match(JSON.parse(leave.out), { leaving: true });
  t.equal(await running, EXIT.ok, 'the run command returns 0 after leaving');
  t.equal((await cli(port, 'status')).code, EXIT.unreachable, 'and the API is gone');
});

t.test('the demo without root: a local cluster on the fake kernel, with the routes each agent would program', async (t) => {
  const { runLocalDemo } = await import('../../src/demo/index.js');
  const c = capture();
  t.equal(await runLocalDemo({ agents: 2, ...c.io }), 0, c.err());
  t.match(c.out(), /converged in/);
  t.match(c.out(), /a1 would program \(underlay 192\.0\.2\.11\):\n {2}ip route replace 9\.0\.\d+\.0\/24 via 44\.128\.0\.\d+ dev vtep1024 onlink proto 76/);
  t.match(c.out(), /bridge fdb replace 70:b3:d5:80:00:0\d dev vtep1024 dst 192\.0\.2\.12 self permanent/);
});
