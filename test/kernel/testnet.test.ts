/**
 * The test-network harness itself, on the real kernel: hosts on a switch reach each other,
 * nftables partitions cut them apart and heal, nothing touches the machine's own namespace,
 * and everything is removed afterwards.
 */
import t from 'tap';
import { kernelTestSkip, run, TestNet } from '../helpers/netns.js';

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

  const hostLinksAfter = (await run(['ip', '-o', 'link', 'show'])).stdout;
  t.equal(hostLinksAfter, hostLinksBefore, "the machine's own namespace gained no link");

  await net.destroy();
  t.same(net.remaining(), [], 'every namespace is gone');
  await net.destroy();
  t.throws(() => net.host(9), RangeError);
});

t.test('a failed build removes what it made', { skip }, async (t) => {
  await t.rejects(TestNet.create({ hosts: 2, subnet24: '300.1.1' }), /command failed/);
  const leftovers = (await run(['ip', 'netns', 'list'])).stdout
    .split('\n')
    .filter((line) => line.startsWith(`lxt-${process.pid}-`));
  t.same(leftovers, [], 'no namespace of this process is left');
  await t.rejects(TestNet.create({ hosts: 0 }), RangeError);
});
