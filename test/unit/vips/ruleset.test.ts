import t from 'tap';
import { parseVipCounters, vipBackendChainName, vipChainName, vipRuleset } from '../../../src/vips/index.js';

t.test('the VIP ruleset: a map of VIPs, a chain per VIP and per backend, hairpin per local subnet, per family', async (t) => {
  const r = vipRuleset(
    [
      {
        address: '11.0.0.1',
        port: 80,
        protocol: 'tcp',
        backends: [
          { ip: '9.0.0.2', port: 8080 },
          { ip: '9.0.1.2', port: 8080 },
          { ip: 'fd01::2', port: 80 },
        ],
      },
      { address: '11.0.0.1', port: 80, protocol: 'tcp', backends: [{ ip: '9.9.9.9', port: 1 }] },
      { address: '11.0.0.2', port: 53, protocol: 'udp', backends: [] },
      { address: 'fd11::1', port: 443, protocol: 'tcp', backends: [{ ip: 'fd01::2', port: 8443 }] },
    ],
    { hairpinSubnets: ['9.0.0.0/25', 'fd01::/81'] },
  );
  const chain = vipChainName({ address: '11.0.0.1', port: 80, protocol: 'tcp' });
  t.equal(chain, 'vip_tcp_80_11_0_0_1');
  t.match(r.script, `11.0.0.1 . tcp . 80 : goto ${chain}`);
  const x0 = vipBackendChainName(chain, { ip: '9.0.0.2', port: 8080 });
  const x1 = vipBackendChainName(chain, { ip: '9.0.1.2', port: 8080 });
  t.equal(x0, `${chain}_x9_0_0_2p8080`, "a backend's chain is named from the backend");
  t.match(r.script, `numgen random mod 2 vmap { 0 : goto ${x0}, 1 : goto ${x1} }`, 'backends of the other family are left out');
  t.match(r.script, 'meta l4proto tcp counter dnat to 9.0.0.2:8080');
  t.notMatch(r.script, '9.9.9.9', 'a duplicate VIP: the first wins');
  t.match(r.script, /chain vip_udp_53_11_0_0_2 \{\n\s+counter reject/, 'no backends: refused');
  t.match(r.script, 'ct status dnat ip saddr 9.0.0.0/25 ip daddr 9.0.0.0/25 masquerade');
  t.match(r.script, 'dnat to [fd01::2]:8443', 'IPv6 backends in brackets');
  t.match(r.script, 'ct status dnat ip6 saddr fd01::/81 ip6 daddr fd01::/81 masquerade');
  t.match(r.script, /table ip lashup_vips\ndelete table ip lashup_vips\n/, 'each table replaced whole, in one transaction');
  t.same(
    r.counters.map((c) => [c.family, c.vip, c.backend]),
    [
      ['ip', '11.0.0.1:80', '9.0.0.2:8080'],
      ['ip', '11.0.0.1:80', '9.0.1.2:8080'],
      ['ip6', '[fd11::1]:443', '[fd01::2]:8443'],
    ],
  );
  t.not(
    vipChainName({ address: 'fd00::1:0', port: 80, protocol: 'tcp' }),
    vipBackendChainName(vipChainName({ address: 'fd00::1', port: 80, protocol: 'tcp' }), { ip: '::', port: 0 }),
    'no VIP chain collides with a backend chain',
  );
  t.equal(
    vipRuleset([
      {
        address: '11.0.0.5',
        port: 1,
        protocol: 'tcp',
        backends: [
          { ip: '9.0.0.2', port: 8080 },
          { ip: '9.0.0.2', port: 8080 },
        ],
      },
    ]).counters.length,
    1,
    'a backend listed twice counts once',
  );
  const empty = vipRuleset([]);
  t.equal(empty.script, 'table ip lashup_vips\ndelete table ip lashup_vips\ntable ip6 lashup_vips\ndelete table ip6 lashup_vips\n', 'no VIPs: the tables go');

  const listing = `table ip lashup_vips {\n\tchain ${x0} {\n\t\tmeta l4proto tcp counter packets 12 bytes 720 dnat ip to 9.0.0.2:8080\n\t}\n\tchain ${x1} {\n\t\tmeta l4proto tcp counter packets 3 bytes 180 dnat ip to 9.0.1.2:8080\n\t}\n\tchain vip_udp_53_11_0_0_2 {\n\t\tcounter packets 4 bytes 240 reject\n\t}\n}`;
  t.same(parseVipCounters(listing), { [x0]: 12, [x1]: 3 }, 'backend counters only');
});
