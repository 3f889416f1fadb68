import t from 'tap';
import { AllocationView, type AllocationViewOptions } from '../../../src/daemon/allocation-view.js';
import { PeerIdVerifier, signerFromSeed } from '../../../src/identity/index.js';
import { ALLOCATIONS_KEY, announceAllocation, signRow, withdrawAllocation } from '../../../src/keyspace/index.js';
import { KvStore, kvConfig } from '../../../src/kv/index.js';
import type { Lease } from '../../../src/ipam/index.js';
import type { Logger } from '../../../src/log/index.js';
import { Scheduler } from '../../../src/sim/index.js';
import { MemoryFs } from '../../../src/testing/index.js';

const lease = (agent: string, n: number): Lease => ({ agent, vtepIp: `44.128.0.${n}`, vtepMac: `70:b3:d5:80:00:0${n}`, networks: { dcos: { subnet: `9.0.${n}.0/24` } } }) as unknown as Lease;

function setup(answers: (Lease[] | undefined)[], held: Map<string, Lease> = new Map(), extra: Partial<AllocationViewOptions> = {}) {
  const scheduler = new Scheduler({ epochMs: 0 });
  const fs = new MemoryFs();
  let fetches = 0;
  const peeked: string[] = [];
  const make = () =>
    new AllocationView({
      path: 'data/allocations.json',
      fs,
      clock: scheduler.clock(),
      fetch: (callback) => {
        const answer = answers[Math.min(fetches++, answers.length - 1)];
        scheduler.clock().setTimer(5, () => (answer === undefined ? callback(undefined, 'no master') : callback(answer)));
      },
      peek: (agent, callback) => {
        peeked.push(agent);
        scheduler.clock().setTimer(2, () => callback(held.get(agent) ?? null));
      },
      underlay: (agent) => (agent === 'a1' ? '192.0.2.11' : undefined),
      refreshIntervalMs: 30_000,
      minRefreshMs: 250,
      ...extra,
    });
  return { scheduler, fs, make, fetches: () => fetches, peeked };
}

t.test('fetched at start and periodically; kept on disk for a restart without masters', async (t) => {
  const s = setup([[lease('a1', 1)], [lease('a1', 1), lease('a2', 2)], undefined]);
  const view = s.make();
  let changes = 0;
  view.onChange(() => changes++);
  view.start();
  s.scheduler.runFor(10);
  t.same(view.allocation('a1')?.vtepIp, '44.128.0.1');
  t.equal(view.allocation('a2'), undefined);
  t.equal(view.underlay('a1'), '192.0.2.11');
  s.scheduler.runFor(30_000);
  t.equal(view.allocation('a2')?.vtepIp, '44.128.0.2', 'the periodic refresh brought a2');
  t.equal(changes, 2);
  s.scheduler.runFor(30_000);
  t.equal(view.stats.refreshFailures, 1, 'a failed fetch is counted');
  t.equal(view.allocation('a2')?.vtepIp, '44.128.0.2', 'and the last known allocations stay');
  view.stop();
  const restarted = s.make();
  t.equal(restarted.allocation('a2')?.vtepIp, '44.128.0.2', 'read back from disk, before any master answers');
  t.equal(restarted.stats.allocations, 2);
});

t.test('unknown agents are peeked at (a few per round), many make a whole fetch, absent ones are not asked again at once', async (t) => {
  const held = new Map([['a7', lease('a7', 7)]]);
  const s = setup([[lease('a1', 1)]], held);
  const view = s.make();
  let changes = 0;
  view.onChange(() => changes++);
  view.start();
  s.scheduler.runFor(10);
  t.equal(s.fetches(), 1);
  for (let i = 0; i < 5; i++) view.refresh(['a7', 'ghost']);
  s.scheduler.runFor(100);
  t.same(s.peeked, [], 'not before minRefreshMs since the last ask');
  s.scheduler.runFor(200);
  t.same(s.peeked.sort(), ['a7', 'ghost'], 'one round for all the asks, one peek per name');
  t.equal(view.allocation('a7')?.vtepIp, '44.128.0.7', 'the new agent is known');
  t.equal(changes, 2, 'start, then the peek');
  // ghost: the master holds nothing yet; asked again by itself, backing off from 250 ms (a new
  // agent's entry may arrive before the master applied its allocation).
  const ghostPeeks = (): number => s.peeked.filter((n) => n === 'ghost').length;
  s.scheduler.runFor(300);
  t.equal(ghostPeeks(), 2, 'asked again after 250 ms');
  held.set('ghost', lease('ghost', 8));
  s.scheduler.runFor(600);
  t.equal(ghostPeeks(), 3);
  t.equal(view.allocation('ghost')?.vtepIp, '44.128.0.8', 'found once the master holds it');
  held.delete('ghost');
  view.refresh(['nobody']);
  s.scheduler.runFor(10_000);
  t.equal(s.peeked.filter((n) => n === 'nobody').length, 6, 'a name never held: the first ask and five retries, then it waits for news');
  view.refresh(['nobody']);
  s.scheduler.runFor(1000);
  t.equal(s.peeked.filter((n) => n === 'nobody').length, 6, 'and is not asked again at once');
  const before = s.peeked.length;
  view.refresh(Array.from({ length: 9 }, (_, i) => `n${i}`));
  s.scheduler.runFor(1000);
  t.equal(s.fetches(), 2, 'more than a few names: one whole fetch instead');
  t.equal(s.peeked.length, before);
  t.equal(view.stats.peeks, before);
  view.stop();
  view.refresh(['a9']);
  s.scheduler.runFor(5000);
  t.equal(s.peeked.length, before, 'stopped: nothing more');
});

t.test('an unreadable saved file is ignored', async (t) => {
  const s = setup([[lease('a1', 1)]]);
  s.fs.write('data/allocations.json', new TextEncoder().encode('{nope'));
  const view = s.make();
  t.equal(view.allocation('a1'), undefined);
  view.start();
  s.scheduler.runFor(10);
  t.equal(view.allocation('a1')?.vtepIp, '44.128.0.1');
  view.stop();
});

t.test('malformed allocations from a master are dropped and counted, never stored', async (t) => {
  const bad = [{ agent: 'x' }, { agent: 'y', vtepIp: '44.128.0.9', vtepMac: 'm', networks: 5 }, null, 'lease', { agent: 'z', vtepIp: '1', vtepMac: 'm', networks: { dcos: { subnet: {} } } }];
  const held = new Map<string, Lease>([['w', { agent: 'w' } as unknown as Lease]]);
  const s = setup([[lease('a1', 1), ...(bad as unknown as Lease[])]], held);
  const view = s.make();
  view.start();
  s.scheduler.runFor(10);
  t.equal(view.allocation('a1')?.vtepIp, '44.128.0.1', 'the well-formed one is kept');
  t.equal(view.stats.invalid, 5, 'the five malformed ones counted');
  t.equal(view.stats.allocations, 1);
  s.scheduler.runFor(1000);
  t.same(
    JSON.parse(new TextDecoder().decode(s.fs.read('data/allocations.json'))).leases.map((l: Lease) => l.agent),
    ['a1'],
    'only well-formed allocations are saved',
  );
  view.refresh(['w']);
  s.scheduler.runFor(500);
  t.equal(view.allocation('w'), undefined, 'a malformed peek answer is not taken');
  t.equal(view.stats.invalid, 6);
  view.stop();
});

t.test("allocations by VTEP address and by agent, for the store's ownership check", async (t) => {
  const s = setup([[lease('a1', 1), lease('a2', 2)]], new Map([['a3', lease('a3', 3)]]));
  const view = s.make();
  view.start();
  s.scheduler.runFor(10);
  t.equal(view.byVtep('44.128.0.2')?.agent, 'a2');
  t.equal(view.byAgent('a1')?.vtepIp, '44.128.0.1');
  t.equal(view.byVtep('44.128.0.3'), undefined);
  view.contested('a3');
  s.scheduler.runFor(300);
  t.same(s.peeked, ['a3'], 'a contested agent is asked about');
  t.equal(view.byVtep('44.128.0.3')?.agent, 'a3', 'and the VTEP index follows');
  t.equal(view.signatureProblem('dcos', '44.128.0.1', {}, 'peer'), undefined, 'without a verifier, signatures are not checked');
  view.stop();
});

// Announcements: m1 is a pinned master; `rogue` is any other holder of the cluster key.
const m1 = signerFromSeed(new Uint8Array(32).fill(1));
const rogue = signerFromSeed(new Uint8Array(32).fill(9));

function announcing(answers: (Lease[] | undefined)[], held: Map<string, Lease> = new Map()) {
  let verified = 0;
  const verifier = new PeerIdVerifier();
  const counting = {
    verify: (identity: string, payload: Uint8Array, signature: Uint8Array): boolean => {
      verified++;
      return verifier.verify(identity, payload, signature);
    },
  };
  const warnings: Record<string, unknown>[] = [];
  const logger = { warn: (fields: Record<string, unknown>) => warnings.push(fields), debug: () => undefined } as unknown as Logger;
  const s = setup(answers, held, { announcements: { masterIdentity: (name) => (name === 'm1' ? m1.identity : undefined), verifier: counting }, logger });
  const kv = new KvStore({ actor: 'm1', clock: s.scheduler.clock(), config: kvConfig() });
  const view = s.make();
  kv.subscribe(
    (key) => key === ALLOCATIONS_KEY,
    (change) => view.announcementsChanged(change.old, change.new),
  );
  /** Writes any value as the announcement of `agent`, as any member could. */
  const write = (agent: string, value: unknown): void => {
    const marker = kv.marker();
    kv.update(ALLOCATIONS_KEY, (m) => m.lww(agent).write(marker, value as never));
    s.scheduler.runFor(1);
  };
  return { ...s, kv, view, write, warnings, verified: () => verified };
}

t.test("a master's signed announcement vouches for a new agent without asking; a removal is checked with the masters", async (t) => {
  const s = announcing([[lease('a1', 1)]]);
  let changes = 0;
  s.view.onChange(() => changes++);
  s.view.start();
  s.scheduler.runFor(10);
  t.equal(announceAllocation(s.kv, lease('a2', 2), 'm1', m1), true);
  t.equal(announceAllocation(s.kv, lease('a2', 2), 'm1', m1), false, 'the same announcement is not written again');
  s.scheduler.runFor(1);
  t.equal(s.view.allocation('a2')?.vtepIp, '44.128.0.2', 'taken from the store');
  t.same(s.peeked, [], 'no master was asked');
  t.equal(s.view.stats.announced, 1);
  t.equal(changes, 2, 'the fetch at start, then the announcement');
  // Another agent's announcement later: only the new row is checked again.
  const before = s.verified();
  announceAllocation(s.kv, lease('a3', 3), 'm1', m1);
  s.scheduler.runFor(1);
  t.equal(s.verified() - before, 1, 'one signature checked, not one per row');
  t.equal(s.view.allocation('a3')?.vtepIp, '44.128.0.3');
  t.same(
    s.view
      .recentlyAnnounced(60_000)
      .map((r) => r.lease.agent)
      .sort(),
    ['a2', 'a3'],
    'both announced recently (the fetched a1 was not announced)',
  );
  t.same(
    s.view.recentlyAnnounced(1).map((r) => r.lease.agent),
    ['a3'],
    "within the last millisecond: a3 only (a2's arrived earlier)",
  );
  // The granting master's membership knew a4's underlay address; a5's announcement carries one that does not parse.
  announceAllocation(s.kv, lease('a4', 4), 'm1', m1, '192.0.2.4');
  announceAllocation(s.kv, lease('a5', 5), 'm1', m1, 'not an address');
  s.scheduler.runFor(1);
  const recent = new Map(s.view.recentlyAnnounced(1).map((r) => [r.lease.agent, r]));
  t.equal(recent.get('a4')?.underlayIp, '192.0.2.4', 'the underlay address comes with the announcement');
  t.notOk(Object.hasOwn(recent.get('a4')?.lease ?? {}, 'underlayIp'), 'and is not part of the allocation');
  t.same(s.view.allocation('a4'), lease('a4', 4), 'the allocation is the lease as granted');
  t.ok(recent.has('a5') && recent.get('a5')?.underlayIp === undefined, 'an address that does not parse is left out; the allocation is still taken');
  t.equal(s.view.stats.announcementsUnderlayInvalid, 1, 'and that is counted');
  t.match(
    s.warnings.at(-1),
    { code: 'LASHUP_ERR_ALLOCATION_ANNOUNCEMENT_UNDERLAY_INVALID', agent: 'a5', reason: /"not an address" is not valid; expected an IPv4 or IPv6 address/ },
    'and logged, naming the value and what is valid',
  );
  // Released: the announcement goes; the view asks, and the master holds nothing.
  t.equal(withdrawAllocation(s.kv, 'a2'), true);
  t.equal(withdrawAllocation(s.kv, 'a2'), false, 'nothing left to withdraw');
  s.scheduler.runFor(300);
  t.same(s.peeked, ['a2'], 'asked about');
  t.equal(s.view.allocation('a2'), undefined, 'and dropped');
  t.same(
    s.view
      .recentlyAnnounced(60_000)
      .map((r) => r.lease.agent)
      .sort(),
    ['a3', 'a4', 'a5'],
    'a released agent is no longer among the recent announcements',
  );
  s.view.stop();
});

t.test('announcements that are not signed by the pinned identity of the master they name are not taken', async (t) => {
  const held = new Map([['a2', lease('a2', 2)]]);
  const s = announcing([[]], held);
  s.view.start();
  s.scheduler.runFor(10);
  const forged = { ...lease('a2', 2), vtepIp: '44.128.0.66', by: 'm1' };
  s.write('a2', forged);
  t.equal(s.view.stats.announcementsRefused, 1, 'unsigned');
  t.match(s.warnings, [{ code: 'LASHUP_ERR_ALLOCATION_ANNOUNCEMENT_REFUSED', agent: 'a2', reason: /carries no signature/ }], 'logged with its stable code and the reason');
  s.write('a2', signRow(rogue, ALLOCATIONS_KEY, 'a2', forged, 1));
  t.equal(s.view.stats.announcementsRefused, 2, "signed by another identity than m1's");
  s.write('a2', signRow(rogue, ALLOCATIONS_KEY, 'a2', { ...forged, by: 'rogue' }, 2));
  t.equal(s.view.stats.announcementsRefused, 3, 'naming a master that is not pinned');
  s.write('a2', signRow(m1, ALLOCATIONS_KEY, 'a2', { ...lease('a9', 9), by: 'm1' }, 3));
  t.equal(s.view.stats.announcementsRefused, 4, "another agent's allocation under a2's field");
  s.write('a2', signRow(m1, ALLOCATIONS_KEY, 'a2', { agent: 'a2', by: 'm1' }, 4));
  t.equal(s.view.stats.announcementsRefused, 5, 'a malformed allocation, signed or not');
  s.write('a2', 'text');
  t.equal(s.view.stats.announcementsRefused, 6, 'not an object');
  s.write('a2', signRow(m1, ALLOCATIONS_KEY, 'a2', lease('a2', 2) as unknown as Record<string, unknown>, 5));
  t.equal(s.view.stats.announcementsRefused, 7, 'naming no master');
  t.equal(s.view.stats.announced, 0);
  s.scheduler.runFor(300);
  t.ok(s.peeked.includes('a2'), 'the masters are asked instead');
  t.equal(s.view.allocation('a2')?.vtepIp, '44.128.0.2', "and their answer is taken, never the forged one's");
  s.view.stop();
});

t.test('an answer asked before an announcement arrived does not undo it; a later one does', async (t) => {
  // The fetch at start (asked at 0, answered at 5) lacks a2: the master asked had not applied it.
  const s = announcing([[lease('a1', 1)], [lease('a1', 1)]]);
  s.view.start();
  s.scheduler.runFor(2);
  announceAllocation(s.kv, lease('a2', 2), 'm1', m1);
  s.scheduler.runFor(10);
  t.equal(s.view.allocation('a1')?.vtepIp, '44.128.0.1', "the fetch's allocations are taken");
  t.equal(s.view.allocation('a2')?.vtepIp, '44.128.0.2', 'and the announcement stands');
  // A peek asked before the announcement's change arrives answers nothing: it stands too.
  s.view.refresh(['a3']);
  s.scheduler.runFor(250);
  announceAllocation(s.kv, lease('a3', 3), 'm1', m1);
  s.scheduler.runFor(10);
  t.same(s.peeked, ['a3']);
  t.equal(s.view.allocation('a3')?.vtepIp, '44.128.0.3', 'the null answer was older than the announcement');
  // The next fetch (asked after both) is the masters' word: a2 and a3 are not in it.
  s.scheduler.runFor(30_000);
  t.equal(s.view.allocation('a2'), undefined, 'dropped by a fetch asked after the announcement');
  t.equal(s.view.allocation('a3'), undefined);
  s.view.stop();
});

t.test('changes are written to disk once for a burst, and at stop', async (t) => {
  const s = announcing([[]]);
  s.view.start();
  s.scheduler.runFor(10);
  const writesBefore = s.fs.writes;
  for (let i = 2; i < 6; i++) announceAllocation(s.kv, lease(`a${i}`, i), 'm1', m1);
  s.scheduler.runFor(1);
  t.equal(s.view.stats.announced, 4);
  t.equal(s.fs.read('data/allocations.json'), undefined, 'not written at once');
  s.scheduler.runFor(1000);
  const saved = (): string[] => JSON.parse(new TextDecoder().decode(s.fs.read('data/allocations.json'))).leases.map((l: Lease) => l.agent);
  t.same(saved().sort(), ['a2', 'a3', 'a4', 'a5'], 'written after the delay');
  const writesForBurst = s.fs.writes - writesBefore;
  announceAllocation(s.kv, lease('a6', 6), 'm1', m1);
  s.scheduler.runFor(1);
  s.view.stop();
  t.ok(saved().includes('a6'), 'a change still waiting is written at stop');
  t.equal(s.fs.writes - writesBefore, 2 * writesForBurst, 'one write per burst');
});

t.test('an old announcement is left to the masters; one that shares addresses with a known allocation makes the view ask about both', async (t) => {
  const held = new Map([['a1', lease('a1', 1)]]);
  const s = announcing([[lease('a1', 1)]], held);
  s.view.start();
  s.scheduler.runFor(61_000);
  // Signed by m1 a minute ago: what a released agent would replay to get its addresses back.
  const nowUs = s.scheduler.clock().wallMs() * 1000;
  s.write('a2', signRow(m1, ALLOCATIONS_KEY, 'a2', { ...lease('a2', 2), by: 'm1' }, nowUs - 61_000_000));
  t.equal(s.view.stats.announcementsStale, 1, 'too old: left to the masters');
  t.equal(s.view.stats.announcementsRefused, 0, 'not counted as a refusal');
  t.equal(s.view.allocation('a2'), undefined);
  // A fresh one for x, with a1's VTEP address and block (a1 holds them as far as this view knows).
  const asked = s.peeked.length;
  s.write('x', signRow(m1, ALLOCATIONS_KEY, 'x', { ...lease('x', 1), by: 'm1' }, nowUs));
  t.equal(s.view.stats.announcementsRefused, 1, 'refused: it shares addresses with a1');
  t.equal(s.view.allocation('x'), undefined);
  s.scheduler.runFor(300);
  t.same([...new Set(s.peeked.slice(asked))].sort(), ['a1', 'x'], 'the masters are asked about both');
  t.equal(s.view.allocation('a1')?.vtepIp, '44.128.0.1', "a1's allocation stands (the masters hold it)");
  t.equal(s.view.allocation('x'), undefined, 'x gets none (the masters hold none for it)');
  s.view.stop();
});
