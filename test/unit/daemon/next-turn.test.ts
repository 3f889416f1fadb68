import t from 'tap';
import { nextTurn } from '../../../src/daemon/next-turn.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('work asked for several times in one turn runs once, in a later turn', async (t) => {
  let runs = 0;
  const later = nextTurn(() => runs++);
  later.request();
  later.request();
  t.equal(runs, 0, 'not in the asking turn');
  await turn();
  t.equal(runs, 1, 'once for both asks');
  later.request();
  await turn();
  t.equal(runs, 2, 'asked again after it ran: runs again');
});

t.test('a cancelled run does not happen; a later ask still works', async (t) => {
  let runs = 0;
  const later = nextTurn(() => runs++);
  later.request();
  later.cancel();
  await turn();
  t.equal(runs, 0);
  later.request();
  await turn();
  t.equal(runs, 1);
});
