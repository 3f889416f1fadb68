/**
 * Names (issue 20, first part): an orchestrator registers a task on the agent it runs on
 * (`PUT /v1/tasks/{framework}/{task}?ip=...`); every node's DNS server answers its
 * containerip, autoip and agentip names; a removed task's names go; a failed agent's are
 * withheld until it is back; a released agent's go everywhere. Daemons in this process on
 * 127.0.0.1, agents on fake kernels; DNS on ports of their own.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as packet from 'dns-packet';
import { FakeKernel } from '../../src/dataplane/index.js';
import type { Daemon, DaemonConfig } from '../../src/daemon/index.js';
import { daemonStarter } from '../helpers/daemons.js';
import { generateClusterKey } from '../../src/net/index.js';
import { eventually } from '../helpers/netns.js';
import { until } from '../helpers/until.js';
import { localDaemonConfig } from '../helpers/daemon-config.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-dns-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const key = generateClusterKey();
const tokenFile = join(dir, 'api.token');
const token = 'dns-test-token-0123456789';
writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
const ZONE = 'dcos.thisdcos.directory';

function config(name: string, role: 'master' | 'agent', underlayIp: string, seeds: string[]): DaemonConfig {
  const c = localDaemonConfig({ dir, key, label: 'dns-test', tokenFile }, name, role, underlayIp, seeds);
  c.api.port = 0;
  return c;
}

async function api(d: Daemon, method: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${d.api.port}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'x-lashup-request': '1' } });
  return { status: res.status, body: (await res.json()) as unknown };
}

/** The A (or AAAA) answers of `name` from `d`'s DNS server; undefined for NXDOMAIN. */
async function resolve(d: Daemon, name: string, type: 'A' | 'AAAA' = 'A'): Promise<string[] | undefined> {
  const port = ((await api(d, 'GET', '/v1/tasks')).body as { dns: { port: number } }).dns.port;
  const reply = await new Promise<Buffer>((ok, fail) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      fail(new Error('no DNS answer'));
    }, 2000);
    socket.on('message', (m) => {
      clearTimeout(timer);
      socket.close();
      ok(m);
    });
    socket.send(packet.encode({ id: 7, type: 'query', questions: [{ name, type }] }), port, '127.0.0.1');
  });
  const decoded = packet.decode(reply) as unknown as { rcode: string; answers: { data: string }[] };
  return decoded.rcode === 'NXDOMAIN' ? undefined : decoded.answers.map((a) => a.data).sort();
}

t.test('tasks registered on an agent resolve on every node; removed, failed and released agents', async (t) => {
  const { start, kill, seedOf } = daemonStarter(t);
  const m1 = await start(config('m1', 'master', '127.0.0.1', []));
  const seed = seedOf(m1);
  const a1 = await start(config('a1', 'agent', '192.0.2.11', [seed]), new FakeKernel());
  const a2 = await start(config('a2', 'agent', '192.0.2.12', [seed]), new FakeKernel());
  await until(() => a1.lease !== undefined && a2.lease !== undefined, 30_000, 'both agents leased');

  t.match(await api(a1, 'PUT', '/v1/tasks/marathon/web?ip=9.0.0.5&ip=fd01:b::5'), { status: 200, body: { framework: 'marathon', task: 'web' } });
  t.match(await api(a2, 'PUT', '/v1/tasks/marathon/web?ip=9.0.1.5'), { status: 200 });
  t.match(await api(a2, 'PUT', '/v1/tasks/marathon/hostnet?ip=not-an-ip'), { status: 400, body: { code: 'LASHUP_ERR_BAD_REQUEST' } }, 'a bad address is refused');
  t.match(await api(m1, 'PUT', '/v1/tasks/marathon/web?ip=9.0.0.9'), { status: 409, body: { code: 'LASHUP_ERR_NOT_AN_AGENT' } }, 'tasks are registered on agents');
  const name = `web.marathon.containerip.${ZONE}`;
  for (const d of [m1, a1, a2]) t.ok(await eventually(async () => (await resolve(d, name))?.length === 2, 10_000, 100), `${d.config.name} resolves both web tasks`);
  t.same(await resolve(a2, name), ['9.0.0.5', '9.0.1.5'], 'every task of the name, from any node');
  t.same(await resolve(m1, name, 'AAAA'), ['fd01:b::5']);
  t.same(await resolve(a1, `web.marathon.agentip.${ZONE}`), ['192.0.2.11', '192.0.2.12']);
  t.same(await resolve(a1, `WEB.Marathon.AutoIP.${ZONE}`), ['9.0.0.5', '9.0.1.5'], 'case-insensitive; autoip gives container addresses');
  t.equal(await resolve(a1, `nope.marathon.containerip.${ZONE}`), undefined, 'an unknown task: NXDOMAIN');

  t.match(await api(a2, 'DELETE', '/v1/tasks/marathon/web'), { status: 200, body: { removed: true } });
  t.ok(await eventually(async () => (await resolve(m1, name))?.length === 1, 10_000, 100), "a removed task's address goes");
  t.same(await resolve(a1, name), ['9.0.0.5']);

  // a1 is killed: once a2 declares it failed, its records are withheld; they come back with it.
  await kill(a1);
  await until(() => a2.node.membership.member('a1')?.state === 'dead', 30_000, 'a2 declares a1 failed');
  t.equal(await resolve(a2, name), undefined, "a failed agent's names are withheld");
  t.match(
    (await api(a2, 'GET', `/v1/dns?name=${name}`)).body,
    { answer: 'NXDOMAIN', task: 'web', framework: 'marathon', kind: 'containerip', sources: [{ agent: 'a1', ips: ['9.0.0.5', 'fd01:b::5'], withheld: true, member: 'dead' }] },
    '`lashup dns` explains: the only record is withheld because its agent failed',
  );
  t.match((await api(a2, 'GET', '/v1/dns?name=example.com')).body, { inZone: false, forwardedTo: ['127.0.0.1:9'] }, 'and where a name outside the zone goes');
  t.match(await api(a2, 'GET', '/v1/dns'), { status: 400 }, 'a query without a name is refused');
  const a1b = await start(config('a1', 'agent', '192.0.2.11', [seed]), new FakeKernel());
  t.ok(await eventually(async () => (await resolve(a2, name))?.length === 1, 30_000, 100), "a1's names are back with a1");

  // Released: its records go from every node.
  await kill(a1b);
  t.match(await api(m1, 'POST', '/v1/allocations/a1/release?force=1'), { status: 200, body: { released: true } });
  t.ok(await eventually(async () => (await resolve(m1, name)) === undefined, 10_000, 100), "the released agent's names go from the master");
  t.ok(await eventually(async () => (await resolve(a2, name)) === undefined, 30_000, 100), 'and from the other agent');
});
