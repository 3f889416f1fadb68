import t from 'tap';
import { Scheduler } from '../../../src/sim/index.js';
import { KvStore, kvConfig, type KvStore as Store } from '../../../src/kv/index.js';
import { createLogger } from '../../../src/log/index.js';
import { DEFAULT_OVERLAY_CONFIG, type OverlayConfig } from '../../../src/ipam/index.js';
import {
  OVERLAY_CONFIG_KEY,
  OverlayConfigView,
  cniUsageKey,
  decodeOverlayConfig,
  overlayKey,
  publishCniUsage,
  publishOverlayConfig,
  publishOverlayEntry,
  readCniUsage,
  removeAgentEntries,
  writeIfChanged,
} from '../../../src/keyspace/index.js';

function setup(): { scheduler: Scheduler; kv: Store; published: Uint8Array[] } {
  const scheduler = new Scheduler({ epochMs: 1_700_000_000_000 });
  const published: Uint8Array[] = [];
  const kv = new KvStore({ actor: 'm1', clock: scheduler.clock(), config: kvConfig(), publish: (m) => published.push(m) });
  return { scheduler, kv, published };
}

const base = (): OverlayConfig => structuredClone(DEFAULT_OVERLAY_CONFIG) as OverlayConfig;

t.test('writeIfChanged writes a new or different value once, whatever the key order', async (t) => {
  const { kv, published } = setup();
  t.equal(writeIfChanged(kv, 'k', 'f', { a: 1, b: 2 }), true);
  t.equal(writeIfChanged(kv, 'k', 'f', { b: 2, a: 1 }), false, 'same value with keys in another order is not written again');
  t.equal(published.length, 1, 'one delta published');
  t.equal(writeIfChanged(kv, 'k', 'f', { a: 1, b: 3 }), true);
  t.same(kv.get('k')?.['f'], { a: 1, b: 3 });
});

t.test('decodeOverlayConfig validates what the store holds and names the field', async (t) => {
  t.equal(decodeOverlayConfig(undefined), undefined);
  t.equal(decodeOverlayConfig({}), undefined);
  t.same(decodeOverlayConfig({ config: base() }), base());
  t.throws(() => decodeOverlayConfig({ config: { ...base(), vni: 0 } }), { code: 'LASHUP_ERR_IPAM_INVALID_CONFIG', message: /overlay-config\.config\.vni = 0/ });
  t.throws(() => decodeOverlayConfig({ config: 'x' }), { code: 'LASHUP_ERR_IPAM_INVALID_CONFIG' });
});

t.test('the overlay config view replays, follows valid changes and keeps the last valid one', async (t) => {
  const { scheduler, kv } = setup();
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } });
  const fallback = base();
  const view = new OverlayConfigView({ kv, fallback, logger });
  const seen: OverlayConfig[] = [];
  view.subscribe((c) => seen.push(c));
  t.equal(seen.length, 1, 'the current configuration is replayed at once');
  t.equal(view.current, fallback);
  t.equal(view.published, false);

  const published = { ...base(), mtu: 1400 };
  t.equal(publishOverlayConfig(kv, published), true);
  t.equal(publishOverlayConfig(kv, { ...base(), mtu: 1400 }), false, 'an equal configuration is not published again');
  scheduler.runFor(1);
  t.equal(view.published, true);
  t.equal(view.current.mtu, 1400);
  t.equal(seen.length, 2);
  t.equal(view.stats.updates, 1);

  // A forged write that fails validation: ignored, counted, logged; the last valid one stays.
  kv.update(OVERLAY_CONFIG_KEY, (m) => m.lww('config').write(kv.marker(), { ...base(), vtepSubnet: '44.128.0.1/20' }));
  scheduler.runFor(1);
  t.equal(view.current.mtu, 1400, 'last valid configuration kept');
  t.equal(seen.length, 2, 'listeners not called for an invalid configuration');
  t.same(view.stats.problems, { LASHUP_ERR_IPAM_INVALID_CONFIG: 1 });
  t.match(lines.at(-1), { level: 50, code: 'LASHUP_ERR_IPAM_INVALID_CONFIG', err: /vtepSubnet/ });

  // A key that merely starts like the configuration's is not the configuration.
  kv.update(`${OVERLAY_CONFIG_KEY}-x`, (m) => m.lww('config').write(kv.marker(), { ...base(), mtu: 1300 }));
  scheduler.runFor(1);
  t.equal(view.current.mtu, 1400);

  // Removal keeps the configuration in use.
  kv.remove(OVERLAY_CONFIG_KEY);
  scheduler.runFor(1);
  t.equal(view.current.mtu, 1400);
  view.close();
  publishOverlayConfig(kv, { ...base(), mtu: 1300 });
  scheduler.runFor(1);
  t.equal(view.current.mtu, 1400, 'a closed view no longer follows the store');
});

t.test('overlay entries: published once, removed for a released agent', async (t) => {
  const { kv } = setup();
  const entry = { agentIp: '10.0.0.2', vtepMac: '70:b3:d5:80:00:02', nodeId: 'a2', subnet: '9.0.1.0/24' };
  t.equal(publishOverlayEntry(kv, 'dcos', '44.128.0.2', entry), true);
  t.equal(publishOverlayEntry(kv, 'dcos', '44.128.0.2', { ...entry }), false);
  publishOverlayEntry(kv, 'other', '44.128.0.2', entry);
  publishOverlayEntry(kv, 'dcos', '44.128.0.3', { ...entry, agentIp: '10.0.0.3' });
  t.equal(removeAgentEntries(kv, '44.128.0.2'), 2);
  t.equal(removeAgentEntries(kv, '44.128.0.2'), 0);
  t.same(Object.keys(kv.get(overlayKey('dcos')) ?? {}), ['44.128.0.3']);
});

t.test('container address usage: published when changed, malformed rows left out when read', async (t) => {
  const { kv } = setup();
  t.equal(publishCniUsage(kv, 'dcos', 'a1', { used: 3, total: 125, exhausted: false }), true);
  t.equal(publishCniUsage(kv, 'dcos', 'a1', { used: 3, total: 125, exhausted: false }), false);
  kv.update(cniUsageKey('dcos'), (m) => m.lww('a2').write(kv.marker(), 'garbage'));
  kv.update(cniUsageKey('dcos'), (m) => m.lww('a3').write(kv.marker(), { used: 'x', total: 2 }));
  t.same(readCniUsage(kv, 'dcos'), { a1: { used: 3, total: 125, exhausted: false } });
  t.same(readCniUsage(kv, 'none'), {});
});
