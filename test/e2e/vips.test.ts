/**
 * VIPs through the daemon (issue 21): a master and two agents in this process on 127.0.0.1,
 * agents on fake kernels and a fake nftables for the VIP tables. Tasks declare VIPs through the
 * tasks API; the master's allocator gives the named VIP its address; every agent programs it
 * with the backends of both agents; `l4lb` names answer; bad declarations are refused with
 * their code; a failed agent's backends leave the other agent's rules; a VIP no task declares
 * is released after the grace period; leaving removes the tables.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as packet from 'dns-packet';
import { FakeKernel } from '../../src/dataplane/index.js';
import { Daemon, type DaemonConfig } from '../../src/daemon/index.js';
import { generateClusterKey } from '../../src/net/index.js';
import { FakeVipNft } from '../../src/testing/index.js';
import { localDaemonConfig } from '../helpers/daemon-config.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-vips-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const key = generateClusterKey();
const tokenFile = join(dir, 'api.token');
const token = 'vips-test-token-0123456789';
writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
const ZONE = 'dcos.thisdcos.directory';

function config(name: string, role: 'master' | 'agent', underlayIp: string, seeds: string[]): DaemonConfig {
  const c = localDaemonConfig({ dir, key, label: 'vips-test', tokenFile }, name, role, underlayIp, seeds);
  c.api.port = 0;
  c.vips.releaseGraceMs = 1500;
  c.vips.assignIntervalMs = 200;
  c.dataplane.firewallResyncIntervalMs = 1000;
  return c;
}

async function api(d: Daemon, method: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${d.api.port}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'x-lashup-request': '1' } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function resolveA(d: Daemon, name: string): Promise<string[] | undefined> {
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
    socket.send(packet.encode({ id: 9, type: 'query', questions: [{ name, type: 'A' }] }), port, '127.0.0.1');
  });
  const decoded = packet.decode(reply) as unknown as { rcode: string; answers: { data: string }[] };
  return decoded.rcode === 'NXDOMAIN' ? undefined : decoded.answers.map((a) => a.data);
}

t.test('VIPs: declared through the API, addressed by the master, programmed on every agent, failed backends out, released after grace', async (t) => {
  const daemons: Daemon[] = [];
  t.teardown(() => Promise.all(daemons.map((d) => d.stop(false))));
  const start = async (c: DaemonConfig, vipNft?: FakeVipNft): Promise<Daemon> => {
    const d = await Daemon.start(c, { ...(vipNft === undefined ? {} : { kernel: new FakeKernel(), vipNft }), firewall: false });
    daemons.push(d);
    return d;
  };
  const m1 = await start(config('m1', 'master', '127.0.0.1', []));
  const seed = `127.0.0.1:${/\/tcp\/(\d+)/.exec(m1.node.libp2p.multiaddrs[0] ?? '')?.[1]}`;
  const nft1 = new FakeVipNft();
  const nft2 = new FakeVipNft();
  const a1 = await start(config('a1', 'agent', '192.0.2.11', [seed]), nft1);
  const a2 = await start(config('a2', 'agent', '192.0.2.12', [seed]), nft2);
  await until(() => a1.lease !== undefined && a2.lease !== undefined, 30_000, 'both agents leased');

  t.match(await api(a1, 'PUT', `/v1/tasks/shop/web-1?ip=9.0.0.5&vip=${encodeURIComponent('/web:80:8080')}&vip=${encodeURIComponent('198.18.0.10:5000')}`), {
    status: 200,
    body: { vips: ['/web:80:8080', '198.18.0.10:5000'] },
  });
  t.match(await api(a2, 'PUT', `/v1/tasks/shop/web-2?ip=9.0.1.5&vip=${encodeURIComponent('/web:80:8080')}`), { status: 200 });
  const refusals: [string, string][] = [
    ['/web:99999', 'LASHUP_ERR_VIP_INVALID'],
    ['9.0.0.77:80', 'LASHUP_ERR_VIP_IN_OVERLAY'],
    ['11.0.0.9:80', 'LASHUP_ERR_VIP_IN_VIP_RANGE'],
    [`/${'x'.repeat(64)}:80`, 'LASHUP_ERR_VIP_INVALID'],
  ];
  for (const [vip, code] of refusals)
    t.match(
      await api(a2, 'PUT', `/v1/tasks/shop/bad?ip=9.0.1.6&vip=${encodeURIComponent(vip)}`),
      { status: 400, body: { code, message: new RegExp(vip.slice(0, 10).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')) } },
      `${vip}: ${code}`,
    );

  // The master gives /web its address; both agents program it with both backends.
  const vip = '11.0.0.1 . tcp . 80';
  await until(() => nft1.backends('ip', vip)?.length === 2 && nft2.backends('ip', vip)?.length === 2, 20_000, 'both agents program web.shop with two backends');
  t.same(nft1.backends('ip', vip), ['9.0.0.5:8080', '9.0.1.5:8080']);
  t.same(nft2.backends('ip', '198.18.0.10 . tcp . 5000'), ['9.0.0.5:5000'], 'the address VIP, on the other agent too');
  t.same(m1.node.kv.get('vip-addresses'), { 'web.shop': { ip: '11.0.0.1', ip6: 'fd01:c::1' } }, 'the leader published the address');
  for (const d of [m1, a1, a2]) t.same(await resolveA(d, `web.shop.l4lb.${ZONE}`), ['11.0.0.1'], `${d.config.name} answers the l4lb name`);

  const view = (await api(a1, 'GET', '/v1/vips')).body as {
    vips: { name?: string; dns?: string; address: string; backends: { agent: string; connections: number | null }[] }[];
    rules: { converged: boolean };
  };
  t.match(
    view.vips.find((v) => v.address === '11.0.0.1'),
    {
      name: 'web.shop',
      dns: `web.shop.l4lb.${ZONE}`,
      backends: [
        { agent: 'a1', connections: 0 },
        { agent: 'a2', connections: 0 },
      ],
    },
  );
  t.equal(view.rules.converged, true);
  nft1.packets = 4;
  const counted = (await api(a1, 'GET', '/v1/vips')).body as typeof view;
  t.same(
    counted.vips.find((v) => v.address === '11.0.0.1')?.backends.map((b) => b.connections),
    [4, 4],
    "per-backend counters, read from the kernel's listing",
  );
  const metrics = await (await fetch(`http://127.0.0.1:${a2.api.port}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  t.match(metrics, /^lashup_vips_vips 3$/m, 'VIPs gauged (web.shop over IPv4 and IPv6, the address VIP)');
  t.match(metrics, /^lashup_vips_backends 3$/m);
  t.match(metrics, /^lashup_vips_refused_declarations_total\{code="LASHUP_ERR_VIP_IN_OVERLAY"\} 1$/m, 'refusals counted by code');
  t.match(metrics, /^lashup_vips_rules_full_applies_total [1-9]/m);
  t.match(await (await fetch(`http://127.0.0.1:${m1.api.port}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text(), /^lashup_vips_allocated 1$/m, 'the leader gauges its allocations');

  // a2 fails: its backend leaves a1's rules; a1's stays.
  const scriptsBefore = nft1.scripts.length;
  await a2.stop(false);
  daemons.splice(daemons.indexOf(a2), 1);
  await until(() => nft1.backends('ip', vip)?.join() === '9.0.0.5:8080', 30_000, "a2's backend leaves a1's rules once a2 is declared failed");
  t.ok(nft1.scripts.length > scriptsBefore);
  t.notMatch(nft1.scripts.at(-1) ?? '', /^table ip lashup_vips/, 'by an update, not a whole replace');

  t.same(nft1.backends('ip', '198.18.0.10 . tcp . 5000'), ['9.0.0.5:5000'], 'the other VIPs are untouched');
  // a2 released: its row goes with it. A VIP whose backends are all on failed agents would
  // stay and refuse (reject) rather than vanish; released, a2 declares nothing any more.
  t.match(await api(m1, 'POST', '/v1/allocations/a2/release?force=1'), { status: 200 });
  await until(() => m1.node.kv.get('tasks')?.['a2'] === undefined, 10_000, "a2's row is gone");

  // The task is gone: after the grace period the master releases the address and the name goes.
  t.match(await api(a1, 'DELETE', '/v1/tasks/shop/web-1'), { status: 200, body: { removed: true } });
  await until(() => nft1.backends('ip', vip) === undefined, 10_000, 'no task declares web.shop: its rules go');
  t.same(m1.node.kv.get('vip-addresses')?.['web.shop'], { ip: '11.0.0.1', ip6: 'fd01:c::1' }, 'the address is kept through the grace period');
  await until(() => m1.node.kv.get('vip-addresses')?.['web.shop'] === undefined, 20_000, 'and released after it');
  t.equal(await resolveA(m1, `web.shop.l4lb.${ZONE}`), undefined, 'the name is gone');

  // Leaving removes the VIP tables.
  await a1.stop(true);
  daemons.splice(daemons.indexOf(a1), 1);
  t.equal(nft1.tables.size, 0, 'leaving removes the VIP tables');
});
