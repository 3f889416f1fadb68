import t from 'tap';
import { usageMetrics } from '../../../src/daemon/index.js';
import { publishCniUsage, publishDockerUsage } from '../../../src/keyspace/index.js';
import { KvStore, kvConfig } from '../../../src/kv/index.js';
import { Scheduler } from '../../../src/sim/index.js';

const kv = new KvStore({ actor: 'm1', clock: new Scheduler({ epochMs: 1_700_000_000_000 }).clock(), config: kvConfig() });
publishCniUsage(kv, 'dcos', 'a1', { used: 3, total: 126, exhausted: false });
publishCniUsage(kv, 'dcos', 'a2', { used: 126, total: 126, exhausted: true });
publishDockerUsage(kv, 'dcos', 'a1', { used: 1, total: 126 });

t.test('a master sums every agent and reports its blocks', async (t) => {
  const m = usageMetrics(kv, ['dcos', 'other'], {
    blocks: [
      { network: 'dcos', family: 4, used: 2, total: 256, agents: [] },
      { network: 'dcos', family: 6, used: 2, total: 65536, agents: [] },
    ],
  });
  t.same(m.blocksUsed, { dcos: { 4: 2, 6: 2 } });
  t.same(m.blocksCapacity, { dcos: { 4: 256, 6: 65536 } });
  t.same(m.addressesUsed, { dcos: { cni: 129, docker: 1 } });
  t.same(m.addressesCapacity, { dcos: { cni: 252, docker: 126 } });
});

t.test('an agent reports its own addresses only', async (t) => {
  const m = usageMetrics(kv, ['dcos'], { agent: 'a2' });
  t.equal(m.blocksUsed, undefined);
  t.same(m.addressesUsed, { dcos: { cni: 126 } });
  t.same(m.addressesCapacity, { dcos: { cni: 126 } });
  t.same(usageMetrics(kv, ['dcos'], { agent: 'a9' }).addressesUsed, {}, 'an agent with no containers yet has no series');
});

t.test('network names from the store stay plain keys', async (t) => {
  const m = usageMetrics(kv, [], { blocks: [{ network: '__proto__', family: 4, used: 1, total: 2, agents: [] }] });
  t.same(Object.keys(m.blocksUsed ?? {}), ['__proto__']);
  t.equal(Object.getPrototypeOf(m.blocksUsed), Object.prototype);
});
