import t from 'tap';
import { advertisedAddrs, seedMultiaddr } from '../../../src/daemon/index.js';

t.test('advertised libp2p addresses: the advertised host first, loopback last', async (t) => {
  const listening = ['/ip4/127.0.0.1/tcp/62502/p2p/P', '/ip4/192.0.2.4/tcp/62502/p2p/P', '/ip4/10.0.0.4/tcp/62502/p2p/P'];
  t.same(advertisedAddrs(listening, 'P', undefined), ['/ip4/192.0.2.4/tcp/62502/p2p/P', '/ip4/10.0.0.4/tcp/62502/p2p/P', '/ip4/127.0.0.1/tcp/62502/p2p/P']);
  t.same(advertisedAddrs(listening, 'P', '10.0.0.4')[0], '/ip4/10.0.0.4/tcp/62502/p2p/P');
  t.equal(advertisedAddrs(listening, 'P', '10.0.0.4').length, 3, 'no duplicate of the advertised address');
  t.same(advertisedAddrs(['/ip4/0.0.0.0/tcp/9/p2p/P'], 'P', 'fd00::4')[0], '/ip6/fd00::4/tcp/9/p2p/P');
  t.same(advertisedAddrs(['/ip4/127.0.0.1/tcp/9/p2p/P'], 'P', undefined), ['/ip4/127.0.0.1/tcp/9/p2p/P'], 'loopback only: still listed');
  t.equal(seedMultiaddr('192.0.2.1:62502'), '/ip4/192.0.2.1/tcp/62502');
});
