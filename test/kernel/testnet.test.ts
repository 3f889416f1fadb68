/**
 * The test-network harness itself, on the real kernel: hosts on a switch reach each other,
 * nftables partitions cut them apart and heal, nothing touches the machine's own namespace,
 * and everything is removed afterwards.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { kernelTestSkip, run, TestNet } from '../helpers/netns.js';
import { neighbourEntriesFor } from '../../src/demo/index.js';

const skip = await kernelTestSkip();

t.test('hosts on a switch namespace ping, partition and heal', { skip }, async (t) => {
  const hostLinksBefore = (await run(['ip', '-o', 'link', 'show'])).stdout;
  const net = await TestNet.create({ hosts: 3 });
  t.teardown(() => net.destroy());
  const [h1, h2, h3] = [net.host(1), net.host(2), net.host(3)];
  t.ok(await net.ping(h1.ns, h2.ip), 'h1 reaches h2');
  t.ok(await net.ping(h3.ns, h1.ip), 'h3 reaches h1');

  await net.isolate(h1, [h2.ip]);
  t.notOk(await net.ping(h1.ns, h2.ip), 'h1 cannot reach h2 while isolated');
  t.notOk(await net.ping(h2.ns, h1.ip), 'nor h2 reach h1');
  t.ok(await net.ping(h1.ns, h3.ip), 'h1 still reaches h3');

  await net.heal(h1);
  t.ok(await net.ping(h1.ns, h2.ip), 'healed');

  // nftApply: a script applied whole in the host's namespace, or refused whole with nft's reason.
  const applied = await net.nftApply(h3, 'table inet lxt_apply { chain out { type filter hook output priority 0; ip daddr 192.0.2.1 drop; }; }');
  t.equal(applied.code, 0, applied.stderr);
  t.notOk(await net.ping(h3.ns, h1.ip), 'the applied rule is in force');
  const refused = await net.nftApply(h3, 'delete table inet lxt_apply\ntable inet lxt_apply { chain out { type filter hook output priority 0; ip daddr not-an-address drop; }; }');
  t.equal(refused.code, 1);
  t.match(refused.stderr, /not-an-address/, "nft's reason names the bad value");
  t.notOk(await net.ping(h3.ns, h1.ip), 'a refused script changed nothing (the delete in it did not happen)');
  t.equal((await net.nftApply(h3, 'delete table inet lxt_apply')).code, 0);
  t.ok(await net.ping(h3.ns, h1.ip), 'removed');

  const hostLinksAfter = (await run(['ip', '-o', 'link', 'show'])).stdout;
  t.equal(hostLinksAfter, hostLinksBefore, "the machine's own namespace gained no link");

  await net.destroy();
  t.same(net.remaining(), [], 'every namespace is gone');
  await net.destroy();
  t.throws(() => net.host(9), RangeError);
});

t.test('a failed build removes what it made', { skip }, async (t) => {
  await t.rejects(TestNet.create({ hosts: 2, subnet24: '300.1.1' }), /command failed/);
  const leftovers = (await run(['ip', 'netns', 'list'])).stdout.split('\n').filter((line) => line.startsWith(`lxt-${process.pid}-`));
  t.same(leftovers, [], 'no namespace of this process is left');
  await t.rejects(TestNet.create({ hosts: 0 }), RangeError);
});

t.test("a large net gets room in the kernel's shared neighbour table, given back when it is destroyed", { skip }, async (t) => {
  const limit = '/proc/sys/net/ipv4/neigh/default/gc_thresh3';
  const before = Number(readFileSync(limit, 'utf8'));
  // 30 hosts need 2 x 30 x 30 = 1,800 entries, above the kernel's default of 1,024.
  const hosts = 30;
  const needed = neighbourEntriesFor(hosts);
  const net = await TestNet.create({ hosts });
  t.teardown(() => net.destroy());
  t.ok(Number(readFileSync(limit, 'utf8')) >= needed, `the limit holds ${needed} entries while the net exists`);
  // Every host resolves every other one at once: the last host still reaches the first.
  const all = await Promise.all(net.hosts.slice(1).map((h) => net.ping(h.ns, net.host(1).ip)));
  t.ok(all.every(Boolean), 'every host reaches host 1');
  t.ok(await net.ping(net.host(hosts).ns, net.host(2).ip), 'the last host reaches host 2');
  await net.destroy();
  t.equal(Number(readFileSync(limit, 'utf8')), before, 'the previous limit is restored');
});
