import t from 'tap';
import { SeededRng } from '../../../src/common/index.js';
import { FakeVipNft } from '../../../src/testing/index.js';
import { vipBackendChainName, vipChainName, vipRuleset, vipUpdateScript, type VipService } from '../../../src/vips/index.js';

const web = (backends: string[]): VipService => ({ address: '11.0.0.1', port: 80, protocol: 'tcp', backends: backends.map((ip) => ({ ip, port: 8080 })) });
const db: VipService = { address: '11.0.0.2', port: 5432, protocol: 'tcp', backends: [{ ip: '9.0.0.9', port: 5432 }] };
const hairpin = { hairpinSubnets: ['9.0.0.0/25'] };

t.test("an update touches only the changed VIP: its chain, its new and gone backends' chains", async (t) => {
  const a = vipRuleset([web(['9.0.0.2', '9.0.1.2']), db], hairpin);
  t.equal(vipUpdateScript(a, vipRuleset([web(['9.0.0.2', '9.0.1.2']), db], hairpin)), '', 'nothing changed: nothing to do');
  const b = vipRuleset([web(['9.0.0.2', '9.0.2.2']), db], hairpin);
  const script = vipUpdateScript(a, b) as string;
  const chain = vipChainName(web([]));
  const kept = vipBackendChainName(chain, { ip: '9.0.0.2', port: 8080 });
  const added = vipBackendChainName(chain, { ip: '9.0.2.2', port: 8080 });
  const gone = vipBackendChainName(chain, { ip: '9.0.1.2', port: 8080 });
  t.same(script.trim().split('\n'), [
    `add chain ip lashup_vips ${added}`,
    `add rule ip lashup_vips ${added} meta l4proto tcp counter dnat to 9.0.2.2:8080`,
    `flush chain ip lashup_vips ${chain}`,
    `add rule ip lashup_vips ${chain} numgen random mod 2 vmap { 0 : goto ${kept}, 1 : goto ${added} }`,
    `delete chain ip lashup_vips ${gone}`,
  ]);
  t.notMatch(script, 'vip_tcp_5432', 'the other VIP is not touched');
  t.notMatch(script, `add chain ip lashup_vips ${kept}`, "a kept backend's chain (and counter) stays");

  const c = vipRuleset([web(['9.0.0.2'])], hairpin);
  const removal = vipUpdateScript(b, c) as string;
  t.match(removal, 'delete element ip lashup_vips services { 11.0.0.2 . tcp . 5432 }');
  t.match(removal, /flush chain ip lashup_vips vip_tcp_5432_11_0_0_2\n[\s\S]*delete chain ip lashup_vips vip_tcp_5432_11_0_0_2\n/);
  t.ok(removal.indexOf('delete element') < removal.indexOf('delete chain'), 'the map element goes before the chain it jumps to');

  const d = vipRuleset([web(['9.0.0.2']), { address: '11.0.0.3', port: 53, protocol: 'udp', backends: [] }], hairpin);
  const addition = vipUpdateScript(c, d) as string;
  t.same(addition.trim().split('\n'), [
    'add chain ip lashup_vips vip_udp_53_11_0_0_3',
    'flush chain ip lashup_vips vip_udp_53_11_0_0_3',
    'add rule ip lashup_vips vip_udp_53_11_0_0_3 counter reject',
    'add element ip lashup_vips services { 11.0.0.3 . udp . 53 : goto vip_udp_53_11_0_0_3 }',
  ]);

  t.equal(vipUpdateScript(c, vipRuleset([web(['9.0.0.2'])], { hairpinSubnets: ['9.0.0.0/24'] })), undefined, 'hairpin subnets changed: replace whole');
  t.equal(vipUpdateScript(c, vipRuleset([], hairpin)), undefined, 'the last VIP of a family gone: replace whole');
  t.equal(vipUpdateScript(vipRuleset([], hairpin), c), undefined, 'the first VIP of a family: replace whole');
  t.equal(vipUpdateScript(c, vipRuleset([web(['9.0.0.2']), { address: 'fd01:c::1', port: 80, protocol: 'tcp', backends: [] }], hairpin)), undefined, 'the first IPv6 VIP: replace whole');
});

t.test('updates, applied one after another, leave the kernel (fake) as a whole replace would: 300 random steps', async (t) => {
  const rng = new SeededRng(2112);
  const incremental = new FakeVipNft();
  let applied = vipRuleset([]);
  await incremental.apply(applied.script);
  let updates = 0;
  let wholes = 0;
  const vips = [
    { address: '11.0.0.1', port: 80, protocol: 'tcp' as const },
    { address: '11.0.0.2', port: 53, protocol: 'udp' as const },
    { address: 'fd01:c::1', port: 80, protocol: 'tcp' as const },
    { address: '198.18.0.10', port: 5000, protocol: 'tcp' as const },
  ];
  const pool4 = ['9.0.0.2', '9.0.0.3', '9.0.1.2', '9.0.2.2', '9.0.3.2'];
  const pool6 = ['fd01:b::2', 'fd01:b::3', 'fd01:b::1:2'];
  for (let step = 0; step < 300; step++) {
    const services = vips
      .filter(() => rng.next() < 0.8)
      .map((v) => ({ ...v, backends: (v.address.includes(':') ? pool6 : pool4).filter(() => rng.next() < 0.5).map((ip) => ({ ip, port: 8000 + Math.floor(rng.next() * 2) })) }));
    const hairpinSubnets = rng.next() < 0.05 ? ['9.0.0.0/25', 'fd01:b::/81'] : ['9.0.0.0/25'];
    const next = vipRuleset(services, { hairpinSubnets });
    const script = vipUpdateScript(applied, next);
    if (script === undefined) {
      wholes++;
      await incremental.apply(next.script);
    } else if (script !== '') {
      updates++;
      await incremental.apply(script);
    }
    applied = next;
    const whole = new FakeVipNft();
    await whole.apply(next.script);
    for (const family of ['ip', 'ip6'] as const) {
      const a = incremental.tables.get(family);
      const b = whole.tables.get(family);
      if ([...(a?.chains.keys() ?? [])].sort().join() !== [...(b?.chains.keys() ?? [])].sort().join()) t.fail(`step ${step}: ${family} chains differ`);
      for (const key of b?.elements.keys() ?? []) if (incremental.backends(family, key)?.join() !== whole.backends(family, key)?.join()) t.fail(`step ${step}: ${key} reaches other backends`);
      if ((a?.elements.size ?? 0) !== (b?.elements.size ?? 0)) t.fail(`step ${step}: ${family} maps differ in size`);
    }
  }
  t.ok(updates > 150, `most steps were updates (${updates} updates, ${wholes} whole replaces)`);
  t.ok(wholes > 0, 'and some replaced whole (hairpin or a family emptied)');
});
