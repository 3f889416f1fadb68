import t from 'tap';
import { FakeKernel, KERNEL_OP_NAMES, LASHUP_ROUTE_PROTOCOL, Reconciler, type DesiredState, type KernelOpName, type KernelSnapshot, type ReconcilerOptions } from '../../../src/dataplane/index.js';
import { Scheduler } from '../../../src/sim/index.js';
import { DEFAULT_VTEP_CONFIG, remoteState } from '../../../src/vxlan/index.js';
import { agent, localPart, merge, overlayState } from '../../helpers/overlay-state.js';

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Rig {
  k: FakeKernel;
  s: Scheduler;
  r: Reconciler;
}

function rig(options: Partial<ReconcilerOptions> = {}, k = new FakeKernel()): Rig {
  const s = new Scheduler();
  const r = new Reconciler({ kernel: k, clock: s.clock(), ...options });
  return { k, s, r };
}

/** Delivers notifications, lets applies finish and advances virtual time in steps, up to `ms`. */
async function settle({ s, r }: Rig, ms = 30_000, stepMs = 100): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += stepMs) {
    await flush();
    await r.idle();
    await flush();
    s.runFor(stepMs);
  }
  await flush();
  await r.idle();
}

/** Kernel state with interface indexes replaced by names, sorted: comparable across runs. */
function canon(k: FakeKernel): string {
  const snap: KernelSnapshot = k.state();
  const name = new Map(snap.links.map((l) => [l.ifindex, l.name]));
  const sorted = (xs: unknown[]): string[] => xs.map((x) => JSON.stringify(x)).sort();
  return JSON.stringify({
    links: sorted(snap.links.map(({ ifindex: _i, master, ...l }) => ({ ...l, mac: l.kind === 'vxlan' ? l.mac : undefined, master: master === undefined ? undefined : name.get(master) }))),
    addresses: sorted(snap.addresses.map(({ ifindex, ...a }) => ({ ...a, dev: name.get(ifindex) }))),
    routes: sorted(snap.routes.map(({ ifindex, ...rt }) => ({ ...rt, dev: ifindex === undefined ? undefined : name.get(ifindex) }))),
    neighbours: sorted(snap.neighbours.map(({ ifindex, ...n }) => ({ ...n, dev: name.get(ifindex) }))),
    fdb: sorted(snap.fdb.map(({ ifindex, ...f }) => ({ ...f, dev: name.get(ifindex) }))),
    rules: sorted(snap.rules),
  });
}

const rule = { family: 4 as const, priority: 100, table: 254, src: '9.0.1.0', srcLen: 24 };

/** The first desired state of the change scenario: agent 1 with remotes 2-4, two networks and a rule. */
function before(): DesiredState {
  return { ...overlayState(1, [2, 3, 4]), rules: [rule] };
}

/** The second: MTU 1400, dcos6 dropped, VTEP re-addressed, agent 3 gone, agent 5 new, agent 2's underlay moved, the rule changed. */
function after(): DesiredState {
  const config = { ...DEFAULT_VTEP_CONFIG, mtu: 1400 };
  const state = localPart(1, config, { ipv6: false });
  state.addresses = state.addresses.map((a) => (a.dev === 'vtep1024' ? { ...a, prefixLen: 20 } : a));
  for (const i of [2, 4, 5]) {
    const remote = { ...agent(i, { ipv6: false }) };
    if (i === 2) remote.underlayIp = '192.0.2.222';
    merge(state, remoteState(config, remote));
  }
  state.rules = [{ ...rule, priority: 101 }];
  return state;
}

t.test('programs from empty, then a second apply sends nothing', async (t) => {
  const x = rig();
  x.r.setDesired(before());
  const first = await x.r.start();
  t.ok(first.resynced, 'the first apply lists the kernel');
  t.ok(first.converged, 'and converges');
  t.ok(first.ops > 20);
  const snap = x.k.state();
  const vtep = snap.links.find((l) => l.name === 'vtep1024');
  t.match(vtep, { kind: 'vxlan', up: true, mtu: 1420, alias: 'lashup', vxlan: { vni: 1024, port: 64000, localIp: '192.0.2.1', learning: false } });
  t.ok(snap.links.find((l) => l.name === 'm-dcos')?.up);
  t.equal(snap.routes.filter((r) => r.protocol === LASHUP_ROUTE_PROTOCOL).length, 6, 'IPv4 and IPv6 route per remote agent');
  t.equal(snap.neighbours.length, 6);
  t.equal(snap.fdb.length, 3, 'one FDB entry per remote agent (its MAC to its underlay IP)');
  t.equal(snap.rules.length, 1);
  await settle(x, 1000);
  const accepted = x.k.accepted.length;
  const again = await x.r.apply();
  t.equal(again.ops, 0, 'nothing to do the second time');
  t.equal(x.k.accepted.length, accepted);
  const stats = x.r.stats();
  t.equal(stats.driftCorrected, 0, 'own echoes are not drift');
  t.ok(stats.notifications > 0);
  t.equal(stats.ops['route.replace'].ok, 6);
  await x.r.stop();
});

/** Runs a scenario with no failures; returns its final state, and the attempted-operation count and kinds. */
async function clean(scenario: (x: Rig) => Promise<void>): Promise<{ state: string; attempts: number; kinds: Set<KernelOpName> }> {
  const x = rig();
  await scenario(x);
  await x.r.stop();
  return { state: canon(x.k), attempts: x.k.attempted, kinds: new Set(x.k.accepted.map((op) => op.op)) };
}

const fromEmpty = async (x: Rig): Promise<void> => {
  x.r.setDesired(before());
  await x.r.start();
  await settle(x, 5000);
};

const change = async (x: Rig): Promise<void> => {
  await fromEmpty(x);
  x.r.setDesired(after());
  await settle(x, 5000);
};

t.test('an injected failure at any step of any operation kind still converges within three applies', async (t) => {
  const kinds = new Set<KernelOpName>();
  for (const [name, scenario, prefix] of [
    ['from empty', fromEmpty, undefined],
    ['change', change, fromEmpty],
  ] as const) {
    const base = await clean(scenario);
    const pre = prefix === undefined ? 0 : (await clean(prefix)).attempts;
    for (const kind of base.kinds) kinds.add(kind);
    t.ok(base.attempts - pre > 5, `${name}: a clean run attempts ${base.attempts - pre} operations`);
    for (let step = pre; step < base.attempts; step++) {
      const x = rig();
      if (prefix !== undefined) await prefix(x);
      const appliesBefore = x.r.stats().applies;
      x.k.failAttempt(step, step % 2 === 0 ? 'EBUSY' : 'ENOBUFS');
      if (prefix === undefined) await scenario(x);
      else {
        x.r.setDesired(after());
        await settle(x, 5000);
      }
      const stats = x.r.stats();
      if (canon(x.k) !== base.state) t.fail(`${name}: failure at attempt ${step} left a different state`);
      if (x.k.pendingFailures !== 0) t.fail(`${name}: attempt ${step} was never made`);
      if (stats.failedApplies !== 1) t.fail(`${name}: attempt ${step}: ${stats.failedApplies} failed applies`);
      const used = stats.applies - appliesBefore;
      if (used > 3 + (prefix === undefined ? 1 : 0)) t.fail(`${name}: failure at attempt ${step} took ${used} applies`);
      if (!stats.converged) t.fail(`${name}: attempt ${step} did not converge`);
      await x.r.stop();
    }
    t.pass(`${name}: every one of ${base.attempts - pre} steps failed once and converged to the clean result`);
  }
  t.same(
    [...KERNEL_OP_NAMES].filter((n) => !kinds.has(n)),
    [],
    'the scenarios exercise every operation kind',
  );
});

t.test('a failed listing is retried with backoff', async (t) => {
  const x = rig({ retryInitialMs: 500 });
  x.k.failNext('list', 'EINTR');
  x.r.setDesired(before());
  const first = await x.r.start();
  t.equal(first.failed, 1);
  t.equal(x.k.accepted.length, 0, 'nothing is sent on a view that was never listed');
  x.s.runFor(499);
  await flush();
  await x.r.idle();
  t.equal(x.r.stats().applies, 1, 'no retry before the backoff');
  await settle(x, 1000);
  t.ok(x.r.stats().converged);
  t.equal(x.r.stats().failedApplies, 1);
  await x.r.stop();
});

t.test('restart over existing state deletes only owned stale entries and re-creates nothing', async (t) => {
  const first = rig();
  first.r.setDesired(before());
  await first.r.start();
  await first.r.stop();
  const k = first.k;
  const vtep = k.linkByName('vtep1024')?.ifindex as number;
  const eth0 = k.insertLink({ name: 'eth0', kind: '', mtu: 1500, up: true });
  // Owned but stale: a route with lashup's protocol, a permanent neighbour and FDB entry on the VTEP, an owned leftover bridge.
  const staleBridge = k.insertLink({ name: 'm-old', kind: 'bridge', mtu: 1420, up: true, alias: 'lashup' });
  k.insert({
    routes: [{ family: 4, table: 254, dst: '9.0.99.0', prefixLen: 24, gateway: '44.128.0.99', ifindex: vtep, protocol: LASHUP_ROUTE_PROTOCOL, onlink: true, metric: 0, unicast: true }],
    neighbours: [{ ifindex: vtep, family: 4, ip: '44.128.0.99', mac: '70:b3:d5:80:00:63', permanent: true }],
    fdb: [{ ifindex: vtep, mac: '70:b3:d5:80:00:63', dst: '192.0.2.99', permanent: true }],
  });
  // Foreign: a static route, a boot route on eth0, a dynamic neighbour on the VTEP, a foreign bridge, a foreign rule.
  const foreignRoutes = [
    { family: 4 as const, table: 254, dst: '10.9.0.0', prefixLen: 16, gateway: '192.0.2.254', ifindex: eth0, protocol: 4, onlink: false, metric: 0, unicast: true },
    { family: 4 as const, table: 254, dst: '9.0.77.0', prefixLen: 24, gateway: '44.128.0.77', ifindex: vtep, protocol: 3, onlink: true, metric: 0, unicast: true },
  ];
  k.insertLink({ name: 'docker0', kind: 'bridge', mtu: 1500, up: true });
  k.insert({
    routes: foreignRoutes,
    neighbours: [{ ifindex: vtep, family: 4, ip: '44.128.0.88', mac: '70:b3:d5:80:00:58', permanent: false }],
    rules: [{ family: 4, priority: 32000, table: 100, srcLen: 0, dstLen: 0, protocol: 4 }],
  });
  const accepted = k.accepted.length;
  const second = rig({}, k);
  second.r.setDesired(before());
  const result = await second.r.start();
  t.ok(result.converged);
  const ops = k.accepted.slice(accepted);
  t.same(ops.map((op) => op.op).sort(), ['fdb.delete', 'link.delete', 'neigh.delete', 'route.delete'], 'exactly the four stale owned objects are deleted, nothing is re-created');
  t.match(
    ops.find((op) => op.op === 'link.delete'),
    { ifindex: staleBridge },
  );
  const snap = k.state();
  for (const r of foreignRoutes)
    t.ok(
      snap.routes.some((x) => x.dst === r.dst && x.protocol === r.protocol),
      `foreign route ${r.dst} stays`,
    );
  t.ok(
    snap.neighbours.some((n) => n.ip === '44.128.0.88'),
    'dynamic neighbour stays',
  );
  t.ok(
    snap.links.some((l) => l.name === 'docker0'),
    'foreign bridge stays',
  );
  t.equal(snap.rules.length, 2, 'foreign rule stays');
  t.equal(k.linkByName('vtep1024')?.ifindex, vtep, 'the VTEP is the same device');
  await second.r.stop();
});

t.test('a foreign route in a desired slot is a conflict until it goes away', async (t) => {
  const x = rig();
  const eth0 = x.k.insertLink({ name: 'eth0', kind: '', mtu: 1500, up: true });
  x.k.insert({ routes: [{ family: 4, table: 254, dst: '9.0.2.0', prefixLen: 24, gateway: '192.0.2.254', ifindex: eth0, protocol: 4, onlink: false, metric: 0, unicast: true }] });
  x.k.insertLink({ name: 'eth1', kind: '', mtu: 1500, up: true });
  x.r.setDesired(overlayState(1, [2], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  await x.r.start();
  await settle(x, 1000);
  t.equal(x.r.stats().conflicts, 1);
  t.match(x.r.conflictReport(), [{ key: 'r|254|9.0.2.0/24|0', reason: /not lashup's/ }]);
  t.ok(
    x.k.state().routes.some((r) => r.dst === '9.0.2.0' && r.protocol === 4),
    'the foreign route is untouched',
  );
  // The operator removes it; the notification frees the slot.
  const [err] = await x.k.execute([
    { op: 'route.delete', route: { family: 4, table: 254, dst: '9.0.2.0', prefixLen: 24, gateway: '192.0.2.254', ifindex: eth0, protocol: 4, onlink: false, metric: 0, unicast: true } },
  ]);
  t.equal(err, undefined);
  await settle(x, 1000);
  t.equal(x.r.stats().conflicts, 0);
  t.ok(x.k.state().routes.some((r) => r.dst === '9.0.2.0' && r.protocol === LASHUP_ROUTE_PROTOCOL));
  await x.r.stop();
});

t.test('MTU changes in place; a new local IP or VNI recreates the VTEP', async (t) => {
  const x = rig();
  x.r.setDesired(overlayState(1, [2], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  await x.r.start();
  await settle(x, 500);
  const index = x.k.linkByName('vtep1024')?.ifindex;
  let mark = x.k.accepted.length;
  x.r.setDesired(overlayState(1, [2], { ...DEFAULT_VTEP_CONFIG, mtu: 1380 }, { ipv6: false }));
  await settle(x, 500);
  t.same([...new Set(x.k.accepted.slice(mark).map((op) => op.op))], ['link.set'], 'MTU: link.set only');
  t.equal(x.k.linkByName('vtep1024')?.ifindex, index);
  t.equal(x.k.linkByName('vtep1024')?.mtu, 1380);
  mark = x.k.accepted.length;
  const moved = localPart(1, DEFAULT_VTEP_CONFIG, { ipv6: false, underlayIp: '192.0.2.201' });
  merge(moved, remoteState(DEFAULT_VTEP_CONFIG, agent(2, { ipv6: false })));
  x.r.setDesired(moved);
  await settle(x, 500);
  const ops = x.k.accepted.slice(mark).map((op) => op.op);
  t.equal(ops[0], 'link.delete', 'new local IP: the VTEP is deleted');
  t.equal(ops[1], 'link.create', 'and created again');
  t.not(x.k.linkByName('vtep1024')?.ifindex, index);
  t.equal(x.k.linkByName('vtep1024')?.vxlan?.localIp, '192.0.2.201');
  t.ok(x.r.stats().converged);
  t.equal(x.k.state().routes.filter((r) => r.protocol === LASHUP_ROUTE_PROTOCOL).length, 1, 'routes through the new VTEP are back');
  t.equal(x.k.state().fdb.length, 1);
  mark = x.k.accepted.length;
  const vni = overlayState(1, [2], { ...DEFAULT_VTEP_CONFIG, vni: 4096 }, { ipv6: false });
  x.r.setDesired(vni);
  await settle(x, 500);
  t.equal(x.k.accepted.slice(mark)[0]?.op, 'link.delete', 'new VNI recreates');
  t.equal(x.k.linkByName('vtep1024')?.vxlan?.vni, 4096);
  await x.r.stop();
});

t.test('drift: notifications repair at once; without notifications the periodic resync does', async (t) => {
  for (const notifications of [true, false]) {
    const x = rig({ resyncIntervalMs: 10_000 }, new FakeKernel({ notifications }));
    x.r.setDesired(overlayState(1, [2, 3], DEFAULT_VTEP_CONFIG, { ipv6: false }));
    await x.r.start();
    await settle(x, 500);
    const snap = x.k.state();
    const route = snap.routes.find((r) => r.protocol === LASHUP_ROUTE_PROTOCOL && r.dst === '9.0.2.0');
    const neigh = snap.neighbours[0];
    const fdb = snap.fdb[0];
    if (route === undefined || neigh === undefined || fdb === undefined) throw new Error('not programmed');
    const errs = await x.k.execute([
      { op: 'route.delete', route },
      { op: 'neigh.delete', neigh },
      { op: 'fdb.delete', fdb },
    ]);
    t.same(errs, [undefined, undefined, undefined]);
    await settle(x, 500);
    const repaired = x.k.state();
    const back = (): boolean => repaired.routes.some((r) => r.dst === '9.0.2.0') && repaired.neighbours.length === 2 && repaired.fdb.length === 2;
    if (notifications) {
      t.ok(back(), 'notifications: repaired within 500 ms');
      t.equal(x.r.stats().driftCorrected, 3);
    } else {
      t.notOk(back(), 'no notifications: nothing knows yet');
      await settle(x, 10_000);
      const later = x.k.state();
      t.ok(later.routes.some((r) => r.dst === '9.0.2.0') && later.neighbours.length === 2 && later.fdb.length === 2, 'the periodic resync repaired it');
      t.equal(x.r.stats().driftCorrected, 3);
      t.ok(x.r.stats().resyncs >= 2);
    }
    await x.r.stop();
  }
});

t.test('a link downed or deleted by hand comes back with its routes', async (t) => {
  const x = rig();
  x.r.setDesired(overlayState(1, [2, 3], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  await x.r.start();
  await settle(x, 500);
  const vtep = x.k.linkByName('vtep1024')?.ifindex as number;
  t.same(await x.k.execute([{ op: 'link.set', ifindex: vtep, up: false }]), [undefined]);
  t.equal(x.k.state().routes.filter((r) => r.protocol === LASHUP_ROUTE_PROTOCOL).length, 0, 'the kernel dropped the routes silently');
  await settle(x, 500);
  t.ok(x.k.linkByName('vtep1024')?.up);
  t.equal(x.k.state().routes.filter((r) => r.protocol === LASHUP_ROUTE_PROTOCOL).length, 2, 'routes restored after the resync');
  t.same(await x.k.execute([{ op: 'link.delete', ifindex: vtep }]), [undefined]);
  await settle(x, 500);
  t.ok(x.k.linkByName('vtep1024'), 'VTEP recreated');
  t.equal(x.k.state().fdb.length, 2);
  t.equal(x.k.state().routes.filter((r) => r.protocol === LASHUP_ROUTE_PROTOCOL).length, 2);
  t.ok(x.r.stats().converged);
  await x.r.stop();
});

t.test('one agent changed among many costs at most three operations', async (t) => {
  const x = rig();
  x.r.setDesiredGroup('local', localPart(1, DEFAULT_VTEP_CONFIG, { ipv6: false }));
  for (let i = 2; i <= 500; i++) x.r.setDesiredGroup(`agent/${i}`, remoteState(DEFAULT_VTEP_CONFIG, agent(i, { ipv6: false })));
  await x.r.start();
  await settle(x, 500);
  t.equal(x.k.state().routes.filter((r) => r.protocol === LASHUP_ROUTE_PROTOCOL).length, 499);
  const mark = x.k.accepted.length;
  const listings = x.k.listings;
  x.r.setDesiredGroup('agent/77', remoteState(DEFAULT_VTEP_CONFIG, { ...agent(77, { ipv6: false }), underlayIp: '192.0.2.250' }));
  await settle(x, 100);
  t.same(
    x.k.accepted.slice(mark).map((op) => op.op),
    ['fdb.replace'],
    'a moved underlay IP: one FDB replace',
  );
  const mark2 = x.k.accepted.length;
  x.r.setDesiredGroup('agent/78', undefined);
  await settle(x, 100);
  t.same(
    x.k.accepted
      .slice(mark2)
      .map((op) => op.op)
      .sort(),
    ['fdb.delete', 'neigh.delete', 'route.delete'],
    'a removed agent: three deletes',
  );
  t.equal(x.k.listings, listings, 'no listing for an incremental change');
  await x.r.stop();
});

t.test('a notification overflow forces a resync', async (t) => {
  const x = rig();
  x.r.setDesired(overlayState(1, [2], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  await x.r.start();
  await settle(x, 500);
  const listings = x.k.listings;
  x.k.overflow();
  await settle(x, 500);
  t.equal(x.k.listings, listings + 1);
  t.equal(x.r.stats().notificationLosses, 1);
  await x.r.stop();
});

t.test('adopts a compatible unowned VTEP instead of recreating it', async (t) => {
  const x = rig();
  const index = x.k.insertLink({ name: 'vtep1024', kind: 'vxlan', mtu: 1500, up: false, vxlan: { vni: 1024, port: 64000, localIp: '192.0.2.1', learning: true } });
  x.r.setDesired(overlayState(1, [2], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  await x.r.start();
  await settle(x, 500);
  const link = x.k.linkByName('vtep1024');
  t.equal(link?.ifindex, index, 'same device');
  t.match(link, { alias: 'lashup', mtu: 1420, up: true, vxlan: { learning: false } });
  t.equal(x.k.accepted.filter((op) => op.op === 'link.create' && op.link.name === 'vtep1024').length, 0);
  await x.r.stop();
});

t.test('a foreign incompatible device with a desired name is a conflict, never touched', async (t) => {
  const x = rig();
  const index = x.k.insertLink({ name: 'vtep1024', kind: 'vxlan', mtu: 1500, up: true, vxlan: { vni: 7, port: 4789, localIp: '192.0.2.1', learning: true } });
  x.r.setDesired(overlayState(1, [2], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  await x.r.start();
  await settle(x, 500);
  t.equal(x.k.linkByName('vtep1024')?.ifindex, index);
  t.equal(x.k.linkByName('vtep1024')?.vxlan?.vni, 7, 'not recreated');
  t.ok(x.r.conflictReport().some((c) => c.key === 'vtep1024'));
  t.ok(x.r.stats().waiting > 0, 'entries on the VTEP wait');
  await x.r.stop();
});

t.test('invalid desired state is rejected whole; a second group claiming a slot is shadowed', async (t) => {
  const x = rig();
  t.throws(() => x.r.setDesired({ routes: [{ dst: '9.0.2.0', prefixLen: 24, gateway: '44.128.0.2', dev: 'vtep1024', onlink: true }], links: [{ name: 'bad name!', kind: 'bridge', mtu: 1420 }] }), {
    code: 'LASHUP_ERR_DATAPLANE_INVALID_STATE',
  });
  t.throws(() => new Reconciler({ kernel: x.k, clock: x.s.clock(), routeProtocol: 2 }), { code: 'LASHUP_ERR_DATAPLANE_INVALID_STATE' });
  x.r.setDesiredGroup('local', localPart(1, DEFAULT_VTEP_CONFIG, { ipv6: false }));
  x.r.setDesiredGroup('a', remoteState(DEFAULT_VTEP_CONFIG, agent(2, { ipv6: false })));
  x.r.setDesiredGroup('b', remoteState(DEFAULT_VTEP_CONFIG, { ...agent(2, { ipv6: false }), vtepIp: '44.128.0.202', vtepMac: '70:b3:d5:80:00:ca' }));
  t.throws(() => x.r.setDesiredGroup('c', localPart(1, DEFAULT_VTEP_CONFIG, { ipv6: false })), /already desired by group/);
  await x.r.start();
  await settle(x, 500);
  t.equal(x.r.stats().shadowed, 1, "b's route for agent 2's subnet is shadowed by a's");
  t.equal(x.k.state().routes.find((r) => r.dst === '9.0.2.0')?.gateway, '44.128.0.2');
  x.r.setDesiredGroup('a', undefined);
  await settle(x, 500);
  t.equal(x.r.stats().shadowed, 0);
  t.equal(x.k.state().routes.find((r) => r.dst === '9.0.2.0')?.gateway, '44.128.0.202', 'b takes the slot when a goes');
  x.r.setDesiredGroup('x', { routes: [{ dst: '9.9.9.0', prefixLen: 24, gateway: '44.128.0.9', dev: 'eth0', onlink: true }] });
  await settle(x, 500);
  t.equal(x.r.stats().invalid, 1, 'a route through a device lashup does not manage is refused');
  await x.r.stop();
});

t.test('an FDB remote rewritten or appended by hand is put back', async (t) => {
  const x = rig();
  x.r.setDesired(overlayState(1, [2], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  await x.r.start();
  await settle(x, 500);
  const fdb = x.k.state().fdb[0];
  if (fdb === undefined) throw new Error('not programmed');
  const resyncs = x.r.stats().resyncs;
  t.same(await x.k.execute([{ op: 'fdb.replace', fdb: { ...fdb, dst: '192.0.2.66' } }]), [undefined]);
  await settle(x, 500);
  t.same(
    x.k.state().fdb.map((f) => f.dst),
    ['192.0.2.2'],
    'the first remote is ours again',
  );
  t.equal(x.r.stats().resyncs, resyncs + 1, 'an ambiguous FDB notification costs a resync');
  t.ok(x.r.stats().converged);
  await x.r.stop();
});

t.test('an FDB echo that overtakes its acknowledgement is not mistaken for a foreign change', async (t) => {
  const x = rig({}, new FakeKernel({ echoBeforeAck: true }));
  x.r.setDesiredGroup('local', localPart(1, DEFAULT_VTEP_CONFIG, { ipv6: false }));
  x.r.setDesiredGroup('agent/2', remoteState(DEFAULT_VTEP_CONFIG, agent(2, { ipv6: false })));
  await x.r.start();
  await settle(x, 500);
  const resyncs = x.r.stats().resyncs;
  const mark = x.k.accepted.length;
  x.r.setDesiredGroup('agent/2', remoteState(DEFAULT_VTEP_CONFIG, { ...agent(2, { ipv6: false }), underlayIp: '192.0.2.202' }));
  await settle(x, 500);
  t.same(
    x.k.accepted.slice(mark).map((op) => op.op),
    ['fdb.replace'],
    'one operation',
  );
  t.equal(x.r.stats().resyncs, resyncs, 'no resync');
  t.same(
    x.k.state().fdb.map((f) => f.dst),
    ['192.0.2.202'],
  );
  await x.r.stop();
});

t.test('route report: desired versus programmed', async (t) => {
  const x = rig();
  x.r.setDesired(overlayState(1, [2, 3], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  await x.r.start();
  t.match(x.r.routeReport(), { counts: { programmed: 6, drift: 0, stale: 0 } }, 'two agents: route, neighbour and FDB entry each');
  // Agent 3 leaves, agent 4 arrives; before the next apply the report shows both.
  x.r.setDesired(overlayState(1, [2, 4], DEFAULT_VTEP_CONFIG, { ipv6: false }));
  const before = x.r.routeReport();
  t.match(before.counts, { programmed: 3, drift: 3, stale: 3 });
  t.ok(before.keys['drift']?.includes('r|254|9.0.4.0/24|0'));
  t.ok(before.keys['stale']?.includes('r|254|9.0.3.0/24|0'));
  await settle(x, 500);
  t.match(x.r.routeReport(), { counts: { programmed: 6, drift: 0, stale: 0 } }, 'clean after the apply');
  t.equal(x.r.routeReport(1).keys['drift']?.length, 0);
  await x.r.stop();
});
