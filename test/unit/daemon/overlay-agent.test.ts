import t from 'tap';
import { OverlayAgent, type OverlayAgentOptions } from '../../../src/daemon/overlay-agent.js';
import type { DesiredState, Reconciler } from '../../../src/dataplane/index.js';
import { DEFAULT_OVERLAY_CONFIG, type Lease, type OverlayConfig } from '../../../src/ipam/index.js';
import { publishOverlayEntry, type OverlayConfigView } from '../../../src/keyspace/index.js';
import { KvStore, kvConfig } from '../../../src/kv/index.js';
import { leaseEntry, overlayKey } from '../../../src/routes/index.js';
import { Scheduler } from '../../../src/sim/index.js';

const lease = (n: number): Lease => ({ agent: `a${n}`, vtepIp: `44.128.0.${n}`, vtepMac: `70:b3:d5:00:00:0${n}`, networks: { dcos: { subnet: `9.0.${n}.0/24` } } }) as unknown as Lease;
const underlayOf = (agent: string): string => `192.0.2.${agent.slice(1)}`;

/**
 * Agent a1 with its lease, a fake reconciler that keeps the desired groups, and a fake authority
 * whose allocations, announcements (with arrival times) and membership the test sets.
 */
function setup(extra: Partial<OverlayAgentOptions> = {}) {
  const scheduler = new Scheduler({ epochMs: 0 });
  const clock = scheduler.clock();
  const kv = new KvStore({ actor: 'a1', clock, config: kvConfig() });
  const groups = new Map<string, DesiredState>();
  let groupSets = 0;
  const reconciler = {
    setDesiredGroup: (group: string, state: DesiredState | undefined) => {
      groupSets++;
      if (state === undefined) groups.delete(group);
      else groups.set(group, state);
    },
  } as unknown as Reconciler;
  const config = DEFAULT_OVERLAY_CONFIG as OverlayConfig;
  const overlay = {
    current: config,
    subscribe: (listener: (c: OverlayConfig) => void) => {
      listener(config);
      return () => undefined;
    },
  } as unknown as OverlayConfigView;
  const allocations = new Map<string, Lease>();
  const announced: { lease: Lease; announcedAtMs: number; underlayIp?: string }[] = [];
  /** Agents this node's membership has not heard of (no underlay address from it). */
  const unheard = new Set<string>();
  const listeners = new Set<() => void>();
  const dead = new Set<string>();
  const authority: NonNullable<OverlayAgentOptions['authority']> = {
    allocation: (agent) => allocations.get(agent),
    underlay: (agent) => (allocations.has(agent) && !unheard.has(agent) ? underlayOf(agent) : undefined),
    refresh: () => undefined,
    onChange: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    recentlyAnnounced: (withinMs) => announced.filter((a) => a.announcedAtMs >= clock.nowMs() - withinMs),
  };
  const agent = new OverlayAgent({
    name: 'a1',
    underlayIp: underlayOf('a1'),
    kv,
    reconciler,
    overlay,
    clock,
    authority,
    alive: (name) => !dead.has(name),
    ...extra,
  });
  agent.start();
  agent.setLease(lease(1));
  scheduler.runFor(20);
  /** The master's announcement of `n`'s allocation arrives now. */
  const announce = (n: number, underlayIp?: string): void => {
    allocations.set(`a${n}`, lease(n));
    announced.push({ lease: lease(n), announcedAtMs: clock.nowMs(), ...(underlayIp === undefined ? {} : { underlayIp }) });
    for (const l of listeners) l();
  };
  /** Agent `n` publishes its own entry (what it writes, from its lease). */
  const publish = (n: number): void => {
    publishOverlayEntry(kv, 'dcos', `44.128.0.${n}`, leaseEntry(lease(n), 'dcos', underlayOf(`a${n}`)) as never);
  };
  const routed = (): string[] =>
    [...groups.values()]
      .flatMap((g) => g.routes)
      .map((r) => `${r.dst}/${r.prefixLen}`)
      .sort();
  return { scheduler, kv, agent, announce, publish, routed, dead, unheard, groupSets: () => groupSets };
}

t.test("a new agent is routed from the masters' announcement before its own entry arrives; the entry then changes nothing", async (t) => {
  const s = setup();
  t.same(s.routed(), [], 'no remote agent yet');
  s.announce(2);
  s.scheduler.runFor(10);
  t.same(s.routed(), ['9.0.2.0/24'], 'routed from the announcement alone');
  t.equal(s.agent.stats.announcedOnly, 1);
  const sets = s.groupSets();
  s.publish(2);
  s.scheduler.runFor(10);
  t.same(s.routed(), ['9.0.2.0/24'], 'still routed from its own entry');
  t.equal(s.groupSets(), sets, 'its own entry, built by the same function, changed no route');
  t.equal(s.agent.stats.announcedOnly, 0);
  t.equal(s.agent.stats.untrusted, 0);
  s.agent.stop();
});

t.test('an entry that was seen and then removed (a leave, a release) is not filled in again from the announcement', async (t) => {
  const s = setup();
  s.announce(2);
  s.publish(2);
  s.scheduler.runFor(10);
  t.same(s.routed(), ['9.0.2.0/24']);
  s.kv.update(overlayKey('dcos'), (m) => m.remove('44.128.0.2'));
  s.scheduler.runFor(10);
  t.same(s.routed(), [], 'its routes went with its entry, though the announcement is recent');
  t.equal(s.agent.stats.announcedOnly, 0);
  s.agent.stop();
});

t.test('an announced agent is routed only while membership sees it alive, and membership news recomputes it', async (t) => {
  const s = setup();
  s.dead.add('a3');
  s.announce(3);
  s.scheduler.runFor(10);
  t.same(s.routed(), [], 'not known alive (dead, left, or its join not heard yet): no route from the announcement');
  const recomputes = s.agent.stats.recomputes;
  s.agent.memberChanged('a9');
  s.scheduler.runFor(10);
  t.equal(s.agent.stats.recomputes, recomputes, 'news of an agent that decides nothing recomputes nothing');
  // The news of its join comes after the announcement; nothing changes in the store.
  s.dead.delete('a3');
  s.agent.memberChanged('a3');
  s.scheduler.runFor(10);
  t.same(s.routed(), ['9.0.3.0/24'], 'routed as soon as membership knows it alive');
  // It fails before its entry came: its route goes at the news, not at the end of the window.
  s.dead.add('a3');
  s.agent.memberChanged('a3');
  s.scheduler.runFor(10);
  t.same(s.routed(), [], 'its route went with the news of its failure');
  s.agent.stop();
});

t.test('an announced agent whose entry never comes loses its route when the window ends, and that is counted', async (t) => {
  const s = setup({ announcedRouteWindowMs: 5000 });
  s.announce(2);
  s.scheduler.runFor(10);
  t.same(s.routed(), ['9.0.2.0/24']);
  s.scheduler.runFor(4000);
  t.same(s.routed(), ['9.0.2.0/24'], 'kept within the window');
  t.equal(s.agent.stats.announcedExpired, 0);
  s.scheduler.runFor(1100);
  t.same(s.routed(), [], 'removed by itself when the window ended (no store change needed)');
  t.equal(s.agent.stats.announcedExpired, 1);
  t.equal(s.agent.stats.announcedOnly, 0);
  s.agent.stop();
});

t.test("a trusted entry at the announced VTEP address is kept as it is; the agent's own address is never filled in", async (t) => {
  const s = setup();
  s.publish(2);
  s.announce(2);
  s.announce(1);
  s.scheduler.runFor(10);
  t.same(s.routed(), ['9.0.2.0/24'], 'one route for a2, none to itself');
  t.equal(s.agent.stats.announcedOnly, 0, 'a2 is routed from its own entry');
  s.agent.stop();
});

t.test('an agent membership has not heard of yet is routed with the underlay address in the announcement', async (t) => {
  const s = setup();
  s.unheard.add('a2');
  s.unheard.add('a3');
  s.announce(2, underlayOf('a2'));
  s.announce(3);
  s.scheduler.runFor(10);
  t.same(s.routed(), ['9.0.2.0/24'], "a2 by the master's address; a3, with no address anywhere, waits");
  const sets = s.groupSets();
  s.unheard.delete('a2');
  s.agent.memberChanged('a2');
  s.publish(2);
  s.scheduler.runFor(10);
  t.equal(s.groupSets(), sets, 'the news of its join and its own entry change no route');
  s.agent.stop();
});
