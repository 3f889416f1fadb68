import t from 'tap';
import { Scheduler } from '../../../src/sim/index.js';
import { KvStore, kvConfig, type FieldChange, type KvAdmission } from '../../../src/kv/index.js';
import { CausalContext } from '../../../src/crdt/index.js';

function pair(onRefusalHeld?: () => void) {
  const scheduler = new Scheduler({ epochMs: 1_700_000_000_000 });
  const toB: Uint8Array[] = [];
  const a = new KvStore({ actor: 'a', clock: scheduler.clock(), config: kvConfig(), publish: (m) => toB.push(m) });
  const b = new KvStore({ actor: 'b', clock: scheduler.clock(), config: kvConfig(), ...(onRefusalHeld === undefined ? {} : { onRefusalHeld }) });
  const deliver = (): void => {
    for (const m of toB.splice(0)) b.receive(m, 'a');
    scheduler.runFor(1);
  };
  return { scheduler, a, b, deliver };
}

/** Refuses any change of field `owned` of guarded keys (prefix `rows/`) while `locked`. */
function admission(): KvAdmission & { locked: boolean; seen: FieldChange[][] } {
  const check = {
    locked: true,
    seen: [] as FieldChange[][],
    guards: (key: string) => key.startsWith('rows/'),
    refuse: (_key: string, changes: readonly FieldChange[]) => {
      check.seen.push([...changes]);
      return check.locked && changes.some((c) => c.name === 'owned') ? 'owned is locked' : undefined;
    },
  };
  return check;
}

t.test('remote writes to guarded keys go through the admission check; refused ones are held and readmitted', async (t) => {
  const { a, b, deliver } = pair();
  const check = admission();
  b.setAdmission(check);
  a.update('rows/x', (m) => m.lww('free').write(a.marker(), 1));
  deliver();
  t.same(b.get('rows/x'), { free: 1 }, 'a change the check accepts is applied');
  t.same(check.seen.at(-1), [{ name: 'free', before: undefined, after: 1 }], 'the check sees the changed fields only');
  a.update('rows/x', (m) => m.lww('owned').write(a.marker(), 'mine'));
  deliver();
  t.same(b.get('rows/x'), { free: 1 }, 'a refused write is not applied');
  t.equal(b.stats.writesRefused, 1, 'and counted');
  t.equal(b.heldRefused, 1, 'and held');
  a.update('other', (m) => m.lww('owned').write(a.marker(), 'x'));
  deliver();
  t.same(b.get('other'), { owned: 'x' }, 'keys the check does not guard are not checked');
  t.equal(b.readmit(), 0, 'still refused: nothing applied');
  t.equal(b.heldRefused, 1, 'and held again');
  check.locked = false;
  t.equal(b.readmit(), 1, 'once the check passes, the held write applies');
  t.same(b.get('rows/x'), { free: 1, owned: 'mine' });
  t.equal(b.heldRefused, 0);
  b.setAdmission(undefined);
  t.equal(b.readmit(), 0, 'nothing held: nothing to do');
});

t.test('the owner is told each time a refused write is held (it checks again only while some are held)', async (t) => {
  let told = 0;
  const { a, b, deliver } = pair(() => told++);
  const check = admission();
  b.setAdmission(check);
  a.update('rows/x', (m) => m.lww('free').write(a.marker(), 1));
  deliver();
  t.equal(told, 0, 'an accepted write holds nothing');
  a.update('rows/x', (m) => m.lww('owned').write(a.marker(), 'mine'));
  deliver();
  t.equal(told, 1, 'a refused write is held and told');
  t.equal(b.readmit(), 0);
  t.equal(told, 2, 'refused again on readmission: held and told again');
  check.locked = false;
  t.equal(b.readmit(), 1);
  t.equal(told, 2, 'applied on readmission: nothing held, nothing told');
});

t.test('anti-entropy repairs are checked too, and a refused repair merges no context', async (t) => {
  const { a, b } = pair();
  const check = admission();
  b.setAdmission(check);
  a.update('rows/y', (m) => m.lww('owned').write(a.marker(), 'v'));
  const state = a.stateOf('rows/y');
  if (state === undefined) throw new Error('no state');
  b.applyRepair('rows/y', state.clone(), state.context.clone(), 100);
  t.equal(b.get('rows/y'), undefined, 'the repair was refused');
  t.equal(b.stats.writesRefused, 1);
  t.ok(b.stateOf('rows/y') === undefined || b.stateOf('rows/y')?.context.dotCount() === 0, 'and its context was not merged');
  check.locked = false;
  b.applyRepair('rows/y', state.clone(), new CausalContext(), 100);
  t.same(b.get('rows/y'), { owned: 'v' });
});

t.test('at most 256 refused writes are held, oldest dropped first', async (t) => {
  const { a, b, deliver } = pair();
  b.setAdmission(admission());
  for (let i = 0; i < 300; i++) a.update(`rows/${i}`, (m) => m.lww('owned').write(a.marker(), i));
  deliver();
  t.equal(b.stats.writesRefused, 300);
  t.equal(b.heldRefused, 256);
});
