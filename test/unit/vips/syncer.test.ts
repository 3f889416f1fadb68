import t from 'tap';
import { Scheduler } from '../../../src/sim/index.js';
import { FakeVipNft } from '../../../src/testing/index.js';
import { VipSyncer, vipBackendChainName, vipChainName, type VipService } from '../../../src/vips/index.js';

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
  t.same(nft.backends('ip', '11.0.0.1 . tcp . 80'), ['9.0.0.2:8080', '9.0.1.2:8080'], 'the kernel (fake) now reaches both');
  syncer.setDesired([web(['9.0.0.2', '9.0.1.2'])], ['9.0.0.0/25']);
  await run(0);
  t.equal(nft.scripts.length, 2, 'the same VIPs: nothing applied');

  nft.failNext = 1;
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

  nft.tables.clear();
  await run(10_000);
  t.equal(syncer.stats.drift, 1, 'a flushed table is drift');
  t.equal(syncer.stats.fullApplies, 3, 'and replaced whole');
  t.same(nft.backends('ip', '11.0.0.1 . tcp . 80'), ['9.0.1.2:8080']);

  // A burst of changes: each applied at once, one listing (the baseline) after the burst.
  const lists = nft.lists;
  for (const ips of [['9.0.1.2', '9.0.2.2'], ['9.0.1.2', '9.0.2.2', '9.0.3.2'], ['9.0.2.2']]) {
    syncer.setDesired([web(ips)], ['9.0.0.0/25']);
    await run(0);
    t.same(nft.backends('ip', '11.0.0.1 . tcp . 80'), ips.map((ip) => `${ip}:8080`).sort(), `applied at once: ${ips.join(', ')}`);
  }
  t.equal(nft.lists, lists, 'no listing on the path of a change');
  await run(1000);
  t.equal(nft.lists, lists + 1, 'one baseline listing after the burst');

  // A listing in progress never holds an update back; a listing an apply overtook is taken again.
  let open = (): void => undefined;
  nft.listGate = new Promise<void>((resolve) => {
    open = resolve;
  });
  await run(10_000);
  const listsHeld = nft.lists;
  syncer.setDesired([web(['9.0.4.2'])], ['9.0.0.0/25']);
  await run(0);
  t.same(nft.backends('ip', '11.0.0.1 . tcp . 80'), ['9.0.4.2:8080'], 'applied while a listing waits');
  nft.listGate = undefined;
  open();
  const drift = syncer.stats.drift;
  await run(2000);
  t.equal(syncer.stats.drift, drift, 'the overtaken listing is not taken for drift');
  t.ok(nft.lists > listsHeld, 'and the baseline is listed again');

  await syncer.remove();
  t.equal(nft.tables.size, 0, 'leaving removes the tables');
  t.equal(syncer.current, undefined);
});
