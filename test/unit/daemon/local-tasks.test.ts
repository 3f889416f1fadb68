import t from 'tap';
import { LocalTasks } from '../../../src/daemon/local-tasks.js';

t.test('each source replaces only its own tasks; listeners hear of real changes only; a stable order', async (t) => {
  const local = new LocalTasks();
  let heard = 0;
  const unsubscribe = local.subscribe(() => heard++);
  local.set('docker', [{ framework: 'shop', task: 'web', ips: ['9.0.0.131', '9.0.0.130'] }]);
  local.set('api', [{ framework: 'a', task: 'z', ips: ['9.0.0.2'] }]);
  local.set('cni', [{ framework: 'shop', task: 'web', ips: ['9.0.0.3'] }]);
  t.equal(heard, 3);
  t.same(
    local.all().map((x) => `${x.source}:${x.framework}/${x.task}=${x.ips.join(',')}`),
    ['api:a/z=9.0.0.2', 'cni:shop/web=9.0.0.3', 'docker:shop/web=9.0.0.130,9.0.0.131'],
    'by source, then name; addresses sorted',
  );
  local.set('docker', [{ framework: 'shop', task: 'web', ips: ['9.0.0.130', '9.0.0.131'] }]);
  t.equal(heard, 3, 'the same tasks again (in another order) are no change');
  local.set('docker', []);
  t.equal(heard, 4);
  t.same(
    local.get('api').map((x) => x.task),
    ['z'],
    "a Docker resync without containers leaves the API's tasks",
  );
  unsubscribe();
  local.set('api', []);
  t.equal(heard, 4, 'an unsubscribed listener hears nothing');
});
