import t from 'tap';
import { Scheduler } from '../../../src/sim/index.js';
import { VipSyncer, vipBackendChainName, vipChainName, type VipNft, type VipService } from '../../../src/vips/index.js';

/** nft as far as the syncer sees it: a whole replace sets the table's text, an update appends to it; counters come in the listing. */
class FakeVipNft implements VipNft {
  table = '';
  scripts: string[] = [];
  failNext = false;
  /** New connections every backend chain's counter shows. */
  packets = 0;
  async apply(script: string): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('nft: Could not process rule');
    }
    this.scripts.push(script);
    this.table = script.startsWith('table ip lashup_vips\n') ? script : this.table + script;
  }
  async listRaw(): Promise<Record<'ip' | 'ip6', string | undefined>> {
    return { ip: this.table.replace(/counter dnat/g, `counter packets ${this.packets} bytes ${this.packets * 60} dnat`), ip6: undefined };
  }
}

const web = (ips: string[]): VipService => ({ address: '11.0.0.1', port: 80, protocol: 'tcp', backends: ips.map((ip) => ({ ip, port: 8080 })) });

function setup() {
  const scheduler = new Scheduler({ epochMs: 1_700_000_000_000 });
  const nft = new FakeVipNft();
  const applied: number[] = [];
  const syncer = new VipSyncer({ nft, clock: scheduler.clock(), resyncIntervalMs: 10_000, retryMinMs: 1000, onApplied: (r) => applied.push(r.counters.length) });
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  const run = async (ms: number): Promise<void> => {
    await settle();
    for (let elapsed = 0; elapsed < ms; elapsed += 100) {
      scheduler.runFor(100);
      await settle();
    }
  };
  return { nft, syncer, run, applied };
}

t.test('the VIP syncer: whole at first, then only changes; failures and drift replace whole; counters read', async (t) => {
  const { nft, syncer, run, applied } = setup();
  syncer.setDesired([web(['9.0.0.2'])], ['9.0.0.0/25']);
  syncer.start();
  await run(0);
  t.equal(syncer.stats.fullApplies, 1, 'the first apply replaces the tables whole');
  t.equal(syncer.stats.converged, true);
  t.same(applied, [1]);

  syncer.setDesired([web(['9.0.0.2', '9.0.1.2'])], ['9.0.0.0/25']);
  await run(0);
  t.equal(syncer.stats.incrementalApplies, 1, 'a new backend: an update');
  t.match(nft.scripts.at(-1), /^add chain ip lashup_vips /, 'touching only the VIP that changed');
  syncer.setDesired([web(['9.0.0.2', '9.0.1.2'])], ['9.0.0.0/25']);
  await run(0);
  t.equal(nft.scripts.length, 2, 'the same VIPs: nothing applied');

  nft.failNext = true;
  syncer.setDesired([web(['9.0.1.2'])], ['9.0.0.0/25']);
  await run(0);
  t.equal(syncer.stats.applyFailures, 1);
  t.equal(syncer.stats.converged, false);
  await run(1000);
  t.equal(syncer.stats.fullApplies, 2, 'after a failure the retry replaces whole (what the failed transaction left is unknown)');
  t.equal(syncer.stats.converged, true);

  const chain = vipBackendChainName(vipChainName(web([])), { ip: '9.0.1.2', port: 8080 });
  nft.packets = 7;
  await syncer.resync();
  t.same(syncer.counters, { [chain]: 7 }, 'counters from the listing');
  t.equal(syncer.stats.drift, 0, 'counter values are not drift');

  nft.table = '';
  await run(10_000);
  t.equal(syncer.stats.drift, 1, 'a flushed table is drift');
  t.equal(syncer.stats.fullApplies, 3, 'and replaced whole');
  t.match(nft.table, /dnat to 9\.0\.1\.2:8080/);

  await syncer.remove();
  t.equal(nft.table, 'table ip lashup_vips\ndelete table ip lashup_vips\ntable ip6 lashup_vips\ndelete table ip6 lashup_vips\n', 'leaving removes the tables');
  t.equal(syncer.current, undefined);
});
