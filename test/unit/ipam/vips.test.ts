import t from 'tap';
import { DEFAULT_OVERLAY_CONFIG, IpamState, decodeCommand, decodeResult, encodeCommand, validateOverlayConfig, type OverlayConfig, type VipAssignment } from '../../../src/ipam/index.js';

function state(config: OverlayConfig = DEFAULT_OVERLAY_CONFIG as OverlayConfig): IpamState {
  const s = new IpamState();
  s.setConfig(config);
  return s;
}

t.test('named VIPs: one address each from the VIP range, stable, never two names on one address', async (t) => {
  const s = state();
  const first = s.assignVips(['web.shop', 'db.shop']);
  t.same(first, { assigned: { 'web.shop': { ip: '11.0.0.1', ip6: 'fd01:c::1' }, 'db.shop': { ip: '11.0.0.2', ip6: 'fd01:c::2' } }, exhausted: [] });
  t.same(s.assignVips(['db.shop', 'web.shop']).assigned['web.shop'], { ip: '11.0.0.1', ip6: 'fd01:c::1' }, 'a VIP keeps its address');
  t.same(s.releaseVips(['web.shop', 'nobody.shop']), ['web.shop'], 'only held VIPs are released');
  t.same(s.assignVips(['api.shop']).assigned['api.shop']?.ip, '11.0.0.1', 'a released address is the lowest free again');
  t.same(Object.keys(s.vipTable()), ['api.shop', 'db.shop']);
  const ips = Object.values(s.vipTable()).map((a) => a.ip);
  t.equal(new Set(ips).size, ips.length, 'no address twice');
  t.same(s.vipUsage(), { used: 2, total: 16_777_214 });
});

t.test('a small VIP range runs out: the VIPs without room are reported, the others assigned', async (t) => {
  const s = state({ ...(DEFAULT_OVERLAY_CONFIG as OverlayConfig), vipSubnet: '11.0.0.0/30', vipSubnet6: 'fd01:c::/126' });
  const r = s.assignVips(['a.f', 'b.f', 'c.f']);
  t.same(Object.keys(r.assigned), ['a.f', 'b.f']);
  t.same(r.exhausted, ['c.f']);
  t.same(r.assigned['b.f'], { ip: '11.0.0.2', ip6: 'fd01:c::2' });
});

t.test('VIP commands through the log, the snapshot, and ranges that cannot move under held VIPs', async (t) => {
  const s = state();
  const result = decodeResult(s.apply(encodeCommand({ op: 'vip-assign', vips: ['web.shop'] })));
  t.same(result.ok && (result.value as VipAssignment).assigned['web.shop']?.ip, '11.0.0.1');
  t.same(decodeCommand(encodeCommand({ op: 'vip-release', vips: ['web.shop'] })), { op: 'vip-release', vips: ['web.shop'] });
  t.throws(() => decodeCommand(encodeCommand({ op: 'vip-assign', vips: ['no dots allowed here'] })), { code: 'LASHUP_ERR_IPAM_DECODE' }, 'a malformed VIP key is refused');
  t.throws(() => decodeCommand(encodeCommand({ op: 'vip-assign', vips: [`${'a'.repeat(64)}.f`] })), { code: 'LASHUP_ERR_IPAM_DECODE' }, 'a name over 63 characters');

  const copy = new IpamState();
  copy.restore(s.snapshot());
  t.same(copy.vipTable(), s.vipTable(), 'the snapshot holds the VIPs');
  t.same(copy.assignVips(['db.shop']).assigned['db.shop']?.ip, '11.0.0.2', 'and their addresses stay taken');

  t.throws(() => s.setConfig({ ...(DEFAULT_OVERLAY_CONFIG as OverlayConfig), vipSubnet: '12.0.0.0/8' }), { code: 'LASHUP_ERR_IPAM_INVALID_CONFIG', message: /VIP ranges/ });
  s.releaseVips(['web.shop']);
  s.setConfig({ ...(DEFAULT_OVERLAY_CONFIG as OverlayConfig), vipSubnet: '12.0.0.0/8' });
  t.equal(s.assignVips(['x.f']).assigned['x.f']?.ip, '12.0.0.1', 'free ranges may change');
});

t.test('the VIP ranges are validated like the others: family, prefix, no overlap', async (t) => {
  const base = DEFAULT_OVERLAY_CONFIG as OverlayConfig;
  t.same(validateOverlayConfig(base).vip, validateOverlayConfig({ ...base, vipSubnet: '11.0.0.0/8' }).vip, 'default 11.0.0.0/8');
  t.throws(() => validateOverlayConfig({ ...base, vipSubnet: 'fd00::/64' }), { message: /overlay.vipSubnet/ });
  t.throws(() => validateOverlayConfig({ ...base, vipSubnet: '11.0.0.0/31' }), { message: /overlay.vipSubnet.*at most/ });
  t.throws(() => validateOverlayConfig({ ...base, vipSubnet: '9.1.0.0/16' }), { message: /overlaps overlay.networks\[0\].subnet/ });
  t.throws(() => validateOverlayConfig({ ...base, vipSubnet6: 'fd01:b::/96' }), { message: /overlaps/ });
});
