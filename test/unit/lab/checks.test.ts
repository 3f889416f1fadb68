import t from 'tap';
import { Checker, type LeaseView, type Observation, pingExpected, World } from '../../../src/lab/index.js';

const lease = (agent: string, i: number): LeaseView => ({
  agent,
  vtepIp: `44.128.0.${i}`,
  vtepMac: `70:b3:d5:00:00:0${i}`,
  networks: { dcos: { subnet: `9.0.${i}.0/24` }, dcos6: { subnet6: `fd01:b::${i}:0:0:0/80` } },
});

function cluster(): { w: World; c: Checker } {
  const w = new World(['m1'], ['a4', 'a5', 'a6']);
  for (const n of ['m1', 'a4', 'a5', 'a6']) w.started(n, 0);
  return { w, c: new Checker(w, 10_000) };
}

/** Everyone sees everyone alive, every agent routes to the others' blocks. */
function healthy(atMs: number, skip: string[] = []): Observation {
  const names = ['m1', 'a4', 'a5', 'a6'].filter((n) => !skip.includes(n));
  const leases = new Map(['a4', 'a5', 'a6'].map((a, i) => [a, lease(a, i + 1)] as const));
  return {
    atMs,
    members: new Map(names.map((o) => [o, new Map(['m1', 'a4', 'a5', 'a6'].filter((n) => n !== o).map((n) => [n, skip.includes(n) ? 'failed' : 'alive']))])),
    routes: new Map(
      ['a4', 'a5', 'a6'].filter((a) => !skip.includes(a)).map((a) => [a, new Set(['a4', 'a5', 'a6'].filter((b) => b !== a).map((b) => leases.get(b)?.networks['dcos']?.subnet as string))]),
    ),
    leases,
    allocations: new Map(leases),
  };
}

t.test('a healthy cluster agrees and breaks nothing', async (t) => {
  const { c } = cluster();
  const v = c.evaluate(healthy(1000));
  t.same([...v.members.values()], [true, true, true, true]);
  t.same([...v.routes.values()], [true, true, true]);
  t.same(v.violations, []);
});

t.test('membership: a killed node must leave every view; a suspicion is not yet agreement', async (t) => {
  const { w, c } = cluster();
  w.stopped('a6', 100, 'killed');
  const obs = healthy(200);
  obs.members.get('a4')?.set('a6', 'suspect');
  obs.members.get('a5')?.set('a6', 'alive');
  obs.members.get('m1')?.set('a6', 'failed');
  obs.members.delete('a6');
  const v = c.evaluate(obs);
  t.same(Object.fromEntries(v.members), { m1: true, a4: false, a5: false }, 'the dead node is not judged as an observer');
  t.equal(v.routes.get('a4'), true, 'routes to a down agent are neither required nor forbidden');
});

t.test('membership under partitions: cut with no bridge -> not alive; bridged or one-way -> no expectation', async (t) => {
  const { w, c } = cluster();
  w.partition([['a4'], ['a5']], false, 0);
  const obs = healthy(100);
  t.equal(c.evaluate(obs).members.get('a4'), true, 'm1 and a6 bridge a4 and a5: alive is fine');
  w.partition([['a4'], ['m1', 'a5', 'a6']], false, 200);
  const v = c.evaluate(healthy(300));
  t.equal(v.members.get('a4'), false, 'a4 alone: it must see the others gone');
  t.equal(v.routes.get('a4'), true, 'routes to cut-off agents are kept (entries stay until a release)');
  w.partition([['a4'], ['m1', 'a5', 'a6']], true, 400);
  t.equal(c.evaluate(healthy(500)).members.get('a4'), true, 'one way: no expectation');
});

t.test('routes: required to every running reachable agent, forbidden to a released block nobody holds', async (t) => {
  const { w, c } = cluster();
  c.evaluate(healthy(0));
  const obs = healthy(100);
  obs.routes.get('a4')?.delete('9.0.2.0/24');
  t.equal(c.evaluate(obs).routes.get('a4'), false, 'a missing route');
  obs.routes.delete('a5');
  t.equal(c.evaluate(obs).routes.get('a5'), false, 'an agent whose kernel was not read does not agree');
  w.stopped('a6', 200, 'stopped');
  w.released('a6');
  c.released('a6');
  const after = healthy(300);
  after.allocations?.delete('a6');
  const v = c.evaluate(after);
  t.equal(v.routes.get('a4'), false, 'a4 still routes to the released 9.0.3.0/24');
  t.same(v.violations, [], "the released agent's stale lease file is not a conflict");
  after.routes.get('a4')?.delete('9.0.3.0/24');
  after.routes.get('a5')?.delete('9.0.3.0/24');
  t.same([...c.evaluate(after).routes.values()], [true, true]);
  // Another agent gets the block: routes to it are right again.
  w.started('a6', 400);
  const again = healthy(500);
  again.leases.set('a6', { ...lease('a6', 3), vtepIp: '44.128.0.9' });
  again.allocations?.set('a6', { ...lease('a6', 3), vtepIp: '44.128.0.9' });
  t.same(c.evaluate(again).violations, [], 'a new lease after a release is not a changed lease');
});

t.test('safety: an address held twice, a lease changed without a release, a lease the allocator lost', async (t) => {
  const { w } = cluster();
  const c = new Checker(w, 10_000, 0);
  c.evaluate(healthy(0));
  const obs = healthy(100);
  obs.leases.set('a5', { ...lease('a5', 2), vtepMac: '70:B3:D5:00:00:01' });
  obs.allocations?.set('a6', { ...lease('a6', 3), networks: { dcos: { subnet: '9.0.1.0/24' } } });
  const messages = c.evaluate(obs).violations.map((v) => `${v.invariant}: ${v.message}`);
  t.match(messages, [
    /unique-addresses: MAC 70:b3:d5:00:00:01 held by both a4 and a5 \(agents leases\)/,
    /unique-addresses: dcos 9.0.1.0\/24 held by both a4 and a6 \(the allocator's leases\)/,
    /leases-kept: a5's lease changed without a release: \[vtep 44.128.0.2 70:b3:d5:00:00:02; dcos 9.0.2.0\/24; dcos6 fd01:b::2:0:0:0\/80\] -> /,
    /leases-kept: a5 holds .* but the allocator has \[vtep 44.128.0.2 70:b3:d5:00:00:02/,
    /leases-kept: a6 holds .* but the allocator has \[vtep 44.128.0.3 70:b3:d5:00:00:03; dcos 9.0.1.0\/24\]/,
  ]);
});

t.test('a lease missing from the allocator is lost only when it stays missing', async (t) => {
  const { c } = cluster();
  c.evaluate(healthy(0));
  const lost = (atMs: number): Observation => {
    const o = healthy(atMs);
    o.allocations?.delete('a4');
    return o;
  };
  t.same(c.evaluate(lost(200)).violations, [], "a new leader's state may lag for a moment");
  t.same(c.evaluate(lost(10_100)).violations, []);
  t.match(
    c.evaluate(lost(10_200)).violations.map((v) => v.message),
    [/^a4 holds .* but the allocator has no lease for it \(for 10 s\)$/],
  );
  t.same(c.evaluate(healthy(10_300)).violations, [], 'back: the clock restarts');
  t.same(c.evaluate(lost(10_400)).violations, []);
});

t.test('an overlay change that adds or removes a network is not a changed lease', async (t) => {
  const { c } = cluster();
  c.evaluate(healthy(0));
  const grown = healthy(100);
  for (const [agent, l] of grown.leases) {
    const more = { ...l, networks: { ...l.networks, dev: { subnet: `10.10.${agent.slice(1)}.0/24` } } };
    grown.leases.set(agent, more);
    grown.allocations?.set(agent, more);
  }
  t.same(c.evaluate(grown).violations, []);
  const moved = healthy(200);
  for (const [agent, l] of grown.leases) moved.leases.set(agent, { ...l, networks: { ...l.networks, dev: { subnet: '10.10.99.0/24' } } });
  t.match(c.evaluate(moved).violations.filter((v) => /changed without a release/.test(v.message)).length, 3, 'the added network is held from then on: its block may not move');
});

t.test('false failures: a transition to failed while nothing stood between, after the grace', async (t) => {
  const { w, c } = cluster();
  const at = (ms: number, state: string): Observation => {
    const o = healthy(ms);
    o.members.get('a4')?.set('a5', state);
    return o;
  };
  t.same(c.evaluate(at(5000, 'failed')).violations, [], 'within the grace after the start');
  t.same(c.evaluate(at(20_000, 'failed')).violations, [], 'still failed: not a new transition');
  c.evaluate(at(21_000, 'alive'));
  t.match(
    c.evaluate(at(22_000, 'failed')).violations.map((v) => v.message),
    ['a4 declared a5 failed while it ran with nothing injected between them for 22 s'],
  );
  c.evaluate(at(23_000, 'alive'));
  w.setLoss('a4', 'a5', 10, 24_000);
  t.same(c.evaluate(at(25_000, 'failed')).violations, [], 'a lossy link excuses it');
  w.setLoss('a4', 'a5', 0, 26_000);
  c.evaluate(at(27_000, 'alive'));
  t.same(c.evaluate(at(30_000, 'failed')).violations, [], 'within the grace after the fault ended');
  c.evaluate(at(31_000, 'alive'));
  w.stopped('a5', 32_000, 'killed');
  t.same(c.evaluate(at(33_000, 'failed')).violations, [], 'a dead member is rightly failed');
});

t.test('pings: expected between running agents, refused across drops, unknown with loss or a node down', async (t) => {
  const { w } = cluster();
  t.equal(pingExpected(w, 'a4', 'a5'), true);
  w.partition([['a4'], ['a5']], true, 0);
  t.equal(pingExpected(w, 'a5', 'a4'), false, 'a reply dropped is a ping lost');
  w.heal(1);
  w.setLoss('a4', 'a5', 5, 2);
  t.equal(pingExpected(w, 'a4', 'a5'), undefined);
  w.stopped('a6', 3, 'killed');
  t.equal(pingExpected(w, 'a4', 'a6'), undefined);
});
