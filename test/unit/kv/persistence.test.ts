import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Scheduler, ScopedClock } from '../../../src/sim/index.js';
import { SeededRng } from '../../../src/common/index.js';
import { KvPersistence, KvStore, NodeFs, kvConfig, type FsyncPolicy, type StorageFs } from '../../../src/kv/index.js';
import { ORMap } from '../../../src/crdt/index.js';
import { MemoryFs } from '../../../src/testing/index.js';

/** One process life: its timers die with it (`clock.cancelAll()` is the crash). */
function boot(fs: StorageFs, scheduler: Scheduler, options: { fsync?: FsyncPolicy; compactAfterBytes?: number; dir?: string } = {}) {
  const clock = new ScopedClock(scheduler);
  const opened = KvPersistence.open({
    fs,
    dir: options.dir ?? 'data/kv',
    clock,
    ...(options.fsync === undefined ? {} : { fsync: options.fsync }),
    ...(options.compactAfterBytes === undefined ? {} : { compactAfterBytes: options.compactAfterBytes }),
  });
  const store = new KvStore({ actor: 'n1', clock, journal: opened.persistence, initial: opened.state, config: kvConfig() });
  opened.persistence.setSnapshotSource(() => store.entries());
  return { store, persistence: opened.persistence, report: opened.report, clock };
}

function write(store: KvStore, key: string, field: string, value: unknown): number {
  const marker = store.marker();
  return store.update(key, (m) => m.lww(field).write(marker, value)).seq;
}

t.test('a clean restart recovers everything', async (t) => {
  const fs = new MemoryFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler);
  for (let i = 0; i < 20; i++) write(a.store, `k${i % 5}`, `f${i}`, i);
  a.store.remove('k4');
  a.persistence.close();
  const b = boot(fs, scheduler);
  t.same(b.store.keys(), ['k0', 'k1', 'k2', 'k3']);
  t.same(b.store.get('k0'), { f0: 0, f5: 5, f10: 10, f15: 15 });
  t.equal(b.report.recordsReplayed, 21);
  t.equal(b.report.truncatedBytes, 0);
  t.equal(b.store.size, 5, 'the removed key kept its context');
});

t.test('group commit: durable after the fsync, and not before', async (t) => {
  const fs = new MemoryFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler, { fsync: { mode: 'interval', intervalMs: 10 } });
  let durable = false;
  a.store.whenDurable(write(a.store, 'k', 'f', 1), () => (durable = true));
  t.notOk(durable);
  scheduler.runFor(5);
  t.notOk(durable, 'not yet: the group commit waits 10 ms');
  scheduler.runFor(10);
  t.ok(durable);
  t.equal(a.persistence.stats.fsyncs, 1);
  const always = boot(new MemoryFs(), scheduler, { fsync: { mode: 'always', intervalMs: 10 } });
  let now = false;
  always.store.whenDurable(write(always.store, 'k', 'f', 1), () => (now = true));
  t.ok(now, 'always: durable before update returns');
  const never = boot(new MemoryFs(), scheduler, { fsync: { mode: 'never', intervalMs: 10 } });
  never.store.update('k', (m) => m.ewflag('x').enable());
  scheduler.runFor(20);
  t.equal(never.persistence.stats.fsyncs, 0, 'never: no fsync');
  t.equal(never.persistence.stats.bytesWritten > 0, true);
});

t.test('a torn tail is truncated and logged; the rest is kept', async (t) => {
  const fs = new MemoryFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler);
  for (let i = 0; i < 5; i++) write(a.store, 'k', `f${i}`, i);
  a.persistence.close();
  const path = 'data/kv/log-000000000';
  const length = (fs.read(path) as Uint8Array).length;
  fs.append(path, Uint8Array.of(40, 0, 0, 0, 1, 2, 3)); // a record header promising 40 bytes, then 3
  const b = boot(fs, scheduler);
  t.equal(b.report.truncatedBytes, 7);
  t.equal((fs.read(path) as Uint8Array).length, length, 'truncated back to the last whole record');
  t.same(Object.keys(b.store.get('k') ?? {}).sort(), ['f0', 'f1', 'f2', 'f3', 'f4']);
});

t.test('compaction keeps two generations; a corrupt snapshot falls back to the previous one', async (t) => {
  const fs = new MemoryFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler);
  write(a.store, 'k', 'a', 1);
  a.persistence.flush();
  a.persistence.compact();
  write(a.store, 'k', 'b', 2);
  a.persistence.flush();
  a.persistence.compact();
  write(a.store, 'k', 'c', 3);
  a.persistence.flush();
  a.persistence.compact();
  write(a.store, 'k', 'd', 4);
  a.persistence.close();
  t.same(fs.list('data/kv'), ['log-000000002', 'log-000000003', 'snapshot-000000002', 'snapshot-000000003']);
  const snapshot = fs.read('data/kv/snapshot-000000003') as Uint8Array;
  snapshot[snapshot.length - 3] = (snapshot[snapshot.length - 3] as number) ^ 0xff;
  fs.write('data/kv/snapshot-000000003', snapshot);
  const b = boot(fs, scheduler);
  t.equal(b.report.corruptSnapshots, 1);
  t.equal(b.report.snapshotGeneration, 2);
  t.same(b.store.get('k'), { a: 1, b: 2, c: 3, d: 4 }, 'snapshot 2 + log 2 + log 3');
  write(b.store, 'k', 'e', 5);
  b.persistence.flush();
  t.ok(fs.list('data/kv').includes('snapshot-000000004'), 'a good snapshot is written at once');
  const c = boot(fs, scheduler);
  t.equal(c.report.corruptSnapshots, 0);
  t.same(c.store.get('k'), { a: 1, b: 2, c: 3, d: 4, e: 5 });
});

t.test('compaction starts by itself once the log passes compactAfterBytes', async (t) => {
  const fs = new MemoryFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler, { compactAfterBytes: 2000 });
  const last = new Map<string, string>();
  for (let i = 0; i < 100; i++) {
    const value = 'x'.repeat(50) + i;
    write(a.store, `k${i % 7}`, 'v', value);
    last.set(`k${i % 7}`, value);
    scheduler.runFor(11);
  }
  t.ok(a.persistence.stats.snapshots >= 2, `${a.persistence.stats.snapshots} snapshots`);
  t.ok(fs.list('data/kv').length <= 4, 'old generations removed');
  a.persistence.close();
  const b = boot(fs, scheduler);
  for (const [key, value] of last) t.equal(b.store.get(key)?.['v'], value, key);
});

t.test('a failing disk: records are kept and retried; nothing is reported durable until written', async (t) => {
  const fs = new MemoryFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler);
  fs.failWriteAt = fs.writes + 1;
  let durable = false;
  a.store.whenDurable(write(a.store, 'k', 'f', 1), () => (durable = true));
  scheduler.runFor(20);
  t.notOk(durable);
  t.equal(a.persistence.stats.writeErrors, 1);
  scheduler.runFor(200);
  t.ok(durable, 'the retry succeeded');
  a.persistence.close();
  t.same(boot(fs, scheduler).store.get('k'), { f: 1 });
});

t.test('killed or powered off between any two writes: nothing reported durable is lost, and it always restarts', async (t) => {
  let crashes = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.integer({ min: 1, max: 120 }),
      fc.constantFrom<FsyncPolicy['mode']>('always', 'interval'),
      fc.boolean(),
      fc.boolean(),
      (seed, operations, mode, powerLoss, slowDisk) => {
        const rng = new SeededRng(seed);
        const fs = new MemoryFs();
        // A slow disk: background fsyncs end at random moments, or never before the crash.
        fs.deferSyncs = slowDisk;
        const scheduler = new Scheduler();
        const durable = new Map<string, number>();
        let node = boot(fs, scheduler, { fsync: { mode, intervalMs: 10 }, compactAfterBytes: 3000 });
        for (let i = 0; i < operations; i++) {
          const key = `k${rng.int(6)}`;
          const field = `f${i}`;
          const seq = write(node.store, key, field, i);
          node.store.whenDurable(seq, () => durable.set(`${key}/${field}`, i));
          scheduler.runFor(rng.int(15));
          if (slowDisk && rng.chance(0.4)) fs.completeSyncs();
          if (rng.chance(0.05)) {
            // Crash now, then start again from the disk.
            node.clock.cancelAll();
            if (powerLoss) fs.crash(rng);
            else fs.kill();
            crashes++;
            node = boot(fs, scheduler, { fsync: { mode, intervalMs: 10 }, compactAfterBytes: 3000 });
            for (const [path, value] of durable) {
              const [k, f] = path.split('/') as [string, string];
              if (node.store.get(k)?.[f] !== value) throw new Error(`lost durable ${path}=${value} after a crash (seed ${seed})`);
            }
          }
        }
        node.clock.cancelAll();
        if (powerLoss) fs.crash(rng);
        else fs.kill();
        const last = boot(fs, scheduler, { fsync: { mode, intervalMs: 10 } });
        for (const [path, value] of durable) {
          const [k, f] = path.split('/') as [string, string];
          if (last.store.get(k)?.[f] !== value) throw new Error(`lost durable ${path}=${value} (seed ${seed})`);
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.ok(crashes > 100, `${crashes} crashes survived`);
});

t.test('a slow disk: the fsync runs in the background, and what is written meanwhile waits for the next one', async (t) => {
  const fs = new MemoryFs();
  fs.deferSyncs = true;
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler, { fsync: { mode: 'interval', intervalMs: 10 } });
  const done: string[] = [];
  a.store.whenDurable(write(a.store, 'k', 'first', 1), () => done.push('first'));
  scheduler.runFor(10);
  t.equal(fs.syncsPending, 1, 'the group commit wrote and started an fsync');
  t.same(done, [], 'not durable while the fsync runs');
  a.store.whenDurable(write(a.store, 'k', 'second', 2), () => done.push('second'));
  scheduler.runFor(10);
  t.equal(fs.syncsPending, 1, 'written, but no second fsync while one runs');
  fs.completeSyncs();
  t.same(done, ['first'], 'the first fsync covers only what was written before it began');
  t.equal(fs.syncsPending, 1, 'its end started the next one');
  fs.completeSyncs();
  t.same(done, ['first', 'second']);
  t.equal(a.persistence.stats.fsyncs, 2);
  t.equal(fs.syncsPending, 0);

  // A crash while an fsync runs loses what it covered only if it was not yet durable.
  a.store.whenDurable(write(a.store, 'k', 'third', 3), () => done.push('third'));
  scheduler.runFor(10);
  a.clock.cancelAll();
  fs.crash(new SeededRng(7));
  const b = boot(fs, scheduler);
  t.same([b.store.get('k')?.['first'], b.store.get('k')?.['second']], [1, 2], 'the durable records survived');
  t.same(done, ['first', 'second'], 'the third was never called durable');

  // close() does not wait for the background: it fsyncs what is left before returning.
  let closed = false;
  b.store.whenDurable(write(b.store, 'k', 'fourth', 4), () => (closed = true));
  scheduler.runFor(10);
  t.notOk(closed);
  b.persistence.close();
  t.ok(closed, 'durable once close returns');
  fs.crash(new SeededRng(8));
  t.equal(boot(fs, scheduler).store.get('k')?.['fourth'], 4);
});

t.test('a failed background fsync: its records are written again, and durable only after an fsync that succeeds', async (t) => {
  const fs = new MemoryFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler, { fsync: { mode: 'interval', intervalMs: 10 } });
  const path = 'data/kv/log-000000000';
  let durable = false;
  fs.failNextSync = true;
  a.store.whenDurable(write(a.store, 'k', 'f', 1), () => (durable = true));
  scheduler.runFor(10);
  const written = (fs.read(path) as Uint8Array).length;
  t.notOk(durable, 'not durable after a failed fsync');
  t.equal(a.persistence.stats.writeErrors, 1);
  t.equal(a.persistence.stats.fsyncs, 0);
  scheduler.runFor(200);
  t.ok(durable, 'durable after the retry');
  t.equal((fs.read(path) as Uint8Array).length, 2 * written, 'the records were appended again');
  fs.crash(new SeededRng(3));
  const b = boot(fs, scheduler);
  t.same(b.store.get('k'), { f: 1 }, 'replaying the record twice is harmless');
});

t.test('the real file system', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-kv-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fs = new NodeFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler, { dir: join(dir, 'kv') });
  for (let i = 0; i < 10; i++) write(a.store, 'k', `f${i}`, i);
  a.persistence.flush();
  a.persistence.compact();
  write(a.store, 'k', 'last', true);
  a.persistence.close();
  t.same(readdirSync(join(dir, 'kv')).sort(), ['log-000000000', 'log-000000001', 'snapshot-000000001']);
  const b = boot(fs, scheduler, { dir: join(dir, 'kv') });
  t.equal(Object.keys(b.store.get('k') ?? {}).length, 11);
  t.throws(() => fs.read(join(dir, 'kv')), { code: 'LASHUP_ERR_STORAGE' }, 'reading a directory as a file');
  t.throws(() => fs.list(join(dir, 'missing')), { code: 'LASHUP_ERR_STORAGE' });
  t.equal(fs.read(join(dir, 'nothing')), undefined);
  const synced = await new Promise<unknown>((resolve) => fs.fsyncInBackground(join(dir, 'kv', 'log-000000001'), resolve));
  t.equal(synced, undefined, 'a background fsync of a file ends without error');
  const missing = await new Promise<unknown>((resolve) => fs.fsyncInBackground(join(dir, 'missing'), resolve));
  t.match(missing, { code: 'LASHUP_ERR_STORAGE', details: { op: 'fsync', errno: 'ENOENT' } }, 'a missing file: a storage error naming the operation and errno');
});

t.test('group commit: changes from other replicas wait remoteIntervalMs; a local update brings them forward', async (t) => {
  const fs = new MemoryFs();
  const scheduler = new Scheduler();
  const a = boot(fs, scheduler, { fsync: { mode: 'interval', intervalMs: 10, remoteIntervalMs: 1000 } });
  let remoteDurable = false;
  a.persistence.whenDurable(a.persistence.append('r1', 'join', new ORMap(), true), () => (remoteDurable = true));
  scheduler.runFor(500);
  t.notOk(remoteDurable, 'a remote change alone waits for the remote interval');
  t.equal(a.persistence.stats.fsyncs, 0);
  scheduler.runFor(500);
  t.ok(remoteDurable, 'durable after remoteIntervalMs');
  t.equal(a.persistence.stats.fsyncs, 1, 'one fsync for it');

  let second = false;
  a.persistence.whenDurable(a.persistence.append('r2', 'join', new ORMap(), true), () => (second = true));
  scheduler.runFor(100);
  let local = false;
  a.store.whenDurable(write(a.store, 'k', 'f', 1), () => (local = true));
  scheduler.runFor(10);
  t.ok(local && second, 'a local update commits the waiting remote change with it, 10 ms later');
  t.equal(a.persistence.stats.fsyncs, 2);
  // A remote change never pushes a pending local commit back.
  let third = false;
  a.store.whenDurable(write(a.store, 'k', 'f', 2), () => (third = true));
  a.persistence.append('r3', 'join', new ORMap(), true);
  scheduler.runFor(10);
  t.ok(third, 'the local update is durable after 10 ms despite the remote change after it');
});
