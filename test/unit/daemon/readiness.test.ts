import t from 'tap';
import { assessReadiness, ReadinessLatch, type ReadinessView } from '../../../src/daemon/index.js';

const agent: ReadinessView = { role: 'agent', seeds: 3, liveMembers: 5, leaseHeld: true, dataplane: true, kernelConverged: true };

t.test('an agent is ready once joined, leased and programmed', async (t) => {
  t.same(assessReadiness(agent), { ready: true, waitingFor: [] });
  t.same(assessReadiness({ ...agent, liveMembers: 1 }), { ready: false, waitingFor: ['join'] });
  t.same(assessReadiness({ ...agent, leaseHeld: false }), { ready: false, waitingFor: ['lease'] });
  t.same(assessReadiness({ ...agent, kernelConverged: false }), { ready: false, waitingFor: ['kernel'] });
  t.same(assessReadiness({ ...agent, kernelConverged: false, dataplane: false }), { ready: true, waitingFor: [] }, 'no dataplane: nothing to program');
  t.same(assessReadiness({ ...agent, liveMembers: 1, leaseHeld: false }), { ready: false, waitingFor: ['join', 'lease'] });
});

t.test('a master needs no lease; the first master (no seeds) is ready alone', async (t) => {
  t.same(assessReadiness({ ...agent, role: 'master', leaseHeld: false, kernelConverged: false }), { ready: true, waitingFor: [] });
  t.same(assessReadiness({ ...agent, role: 'master', seeds: 0, liveMembers: 1 }), { ready: true, waitingFor: [] });
  t.same(assessReadiness({ ...agent, role: 'master', seeds: 2, liveMembers: 1 }), { ready: false, waitingFor: ['join'] });
});

t.test('the latch keeps the first ready and when it was', async (t) => {
  let view: ReadinessView = { ...agent, leaseHeld: false };
  const latch = new ReadinessLatch(() => view);
  t.same(latch.check(1000), { ready: false, waitingFor: ['lease'], readyAtMs: undefined });
  view = agent;
  t.same(latch.check(2000), { ready: true, waitingFor: [], readyAtMs: 2000 });
  view = { ...agent, kernelConverged: false };
  t.same(latch.check(3000), { ready: true, waitingFor: ['kernel'], readyAtMs: 2000 }, 'still ready; what it would wait for is shown');
});
