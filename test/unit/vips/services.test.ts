import t from 'tap';
import { parseCidr } from '../../../src/common/index.js';
import type { AgentTasks } from '../../../src/keyspace/index.js';
import { buildVips, declaredNamedVips, validateVipDeclaration } from '../../../src/vips/index.js';

const ranges = { overlaySubnets: ['9.0.0.0/8', 'fd01:b::/64'], vipRanges: [parseCidr('11.0.0.0/8'), parseCidr('fd01:c::/64')].filter((c) => c !== undefined) };
const row = (agentIp: string, tasks: AgentTasks['tasks']): AgentTasks => ({ agentIp, tasks });

t.test('services from task rows: grouped by VIP, backends from every agent, named VIPs at their addresses', async (t) => {
  const rows = new Map<string, AgentTasks>([
    ['a1', row('10.0.0.1', [{ framework: 'shop', task: 'web-1', ips: ['9.0.0.2', 'fd01:b::2'], source: 'cni', vips: ['/web:80:8080', '/dns:53/udp', '1.2.3.4:5000'] }])],
    ['a2', row('10.0.0.2', [{ framework: 'shop', task: 'web-2', ips: ['9.0.1.2'], source: 'docker', vips: ['/web:80:8080', '1.2.3.4:5000:6000'] }])],
    ['a3', row('10.0.0.3', [{ framework: 'shop', task: 'web-3', ips: ['9.0.2.2'], source: 'api', vips: ['/web:80:8080'] }])],
    ['a4', row('10.0.0.4', [{ framework: 'other', task: 'web', ips: ['9.0.3.2'], source: 'api', vips: ['/web:80'] }])],
  ]);
  const addresses = new Map([['web.shop', { ip: '11.0.0.1', ip6: 'fd01:c::1' }]]);
  const c = buildVips(rows, addresses, { ...ranges, down: (agent) => agent === 'a3' });
  t.same(c.declared, ['dns.shop', 'web.other', 'web.shop']);
  t.same(c.pending, ['dns.shop', 'web.other'], 'named VIPs without an address yet');
  t.same(c.problems, []);
  const web = c.services.find((s) => s.address === '11.0.0.1' && s.port === 80);
  t.same(
    web?.backends.map((b) => `${b.agent}:${b.ip}:${b.port}`),
    ['a1:9.0.0.2:8080', 'a2:9.0.1.2:8080'],
    'the failed agent a3 has no backend; the other framework is another VIP',
  );
  t.equal(web?.name, 'web.shop');
  const web6 = c.services.find((s) => s.address === 'fd01:c::1');
  t.same(
    web6?.backends.map((b) => b.ip),
    ['fd01:b::2'],
    "the IPv6 address serves the tasks' IPv6 addresses",
  );
  const address = c.services.find((s) => s.address === '1.2.3.4');
  t.same(
    address?.backends.map((b) => `${b.ip}:${b.port}`),
    ['9.0.0.2:5000', '9.0.1.2:6000'],
    'an address VIP: every declaring task, with its own backend port',
  );
  t.same(
    c.services.map((s) => `${s.address}/${s.protocol}/${s.port}`),
    ['1.2.3.4/tcp/5000', '11.0.0.1/tcp/80', 'fd01:c::1/tcp/80'],
    'sorted',
  );
  t.same(
    declaredNamedVips(rows).map((v) => v.key),
    ['web.shop', 'dns.shop', 'web.other'],
  );
});

t.test('a named VIP with an IPv6 address but no IPv6 backend still has its IPv6 service, which refuses', async (t) => {
  const rows = new Map<string, AgentTasks>([['a1', row('10.0.0.1', [{ framework: 'shop', task: 'api', ips: ['9.0.0.3'], source: 'api', vips: ['/api:80'] }])]]);
  const c = buildVips(rows, new Map([['api.shop', { ip: '11.0.0.3', ip6: 'fd01:c::3' }]]), ranges);
  t.same(
    c.services.map((s) => [s.address, s.backends.length]),
    [
      ['11.0.0.3', 1],
      ['fd01:c::3', 0],
    ],
  );
});

t.test('bad declarations are left out with their code and value; the other VIPs stay', async (t) => {
  const rows = new Map<string, AgentTasks>([
    ['a1', row('10.0.0.1', [{ framework: 'shop', task: 'web', ips: ['9.0.0.2'], source: 'api', vips: ['/web:99999', '9.0.0.9:80', '11.0.0.7:80', '/ok:80', `/${'x'.repeat(64)}:80`] }])],
  ]);
  const c = buildVips(rows, new Map([['ok.shop', { ip: '11.0.0.1' }]]), ranges);
  t.same(
    c.problems.map((p) => [p.code, p.value]),
    [
      ['LASHUP_ERR_VIP_INVALID', '/web:99999'],
      ['LASHUP_ERR_VIP_IN_OVERLAY', '9.0.0.9:80'],
      ['LASHUP_ERR_VIP_IN_VIP_RANGE', '11.0.0.7:80'],
      ['LASHUP_ERR_VIP_INVALID', `/${'x'.repeat(64)}:80`],
    ],
  );
  t.same(
    c.services.map((s) => s.address),
    ['11.0.0.1'],
    'the good VIP is built',
  );
  t.throws(() => validateVipDeclaration('[fd01:c::9]:80', ranges), { code: 'LASHUP_ERR_VIP_IN_VIP_RANGE' });
});
