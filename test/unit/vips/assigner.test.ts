import t from 'tap';
import { VipAssigner } from '../../../src/vips/index.js';

t.test('the assigner: addresses for declared VIPs at once, releases only after the grace period', async (t) => {
  const a = new VipAssigner(1000);
  t.same(a.plan(['web.shop', 'db.shop'], [], 0), { assign: ['db.shop', 'web.shop'], release: [] });
  t.same(a.plan(['web.shop'], ['web.shop', 'db.shop'], 10), { assign: [], release: [] }, 'undeclared: the grace clock starts');
  t.same(a.releasing(), [{ vip: 'db.shop', atMs: 1010 }]);
  t.same(a.plan(['web.shop'], ['web.shop', 'db.shop'], 1009), { assign: [], release: [] }, 'not before the grace period ends');
  t.same(a.plan(['web.shop', 'db.shop'], ['web.shop', 'db.shop'], 1009).release, [], 'declared again: kept');
  t.same(a.releasing(), [], 'and its clock cleared');
  a.plan(['web.shop'], ['web.shop', 'db.shop'], 2000);
  t.same(a.plan(['web.shop'], ['web.shop', 'db.shop'], 3000), { assign: [], release: ['db.shop'] }, 'released after a full grace period');
  t.same(a.plan(['web.shop'], ['web.shop'], 3001).release, [], 'gone from the allocator: forgotten');
  t.same(a.releasing(), []);
});
