import t from 'tap';
import { SeededRng } from '../../../src/common/index.js';
import { parentDir, writeFileAtomic } from '../../../src/storage/index.js';
import { MemoryFs } from '../../../src/testing/index.js';

const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

function withOld(): MemoryFs {
  const fs = new MemoryFs();
  writeFileAtomic(fs, 'data/lease.json', 'old content');
  fs.kill();
  return fs;
}

t.test('after it returns, the new content survives a power loss', async (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    const fs = withOld();
    writeFileAtomic(fs, 'data/lease.json', 'new content, longer than the old');
    fs.crash(new SeededRng(seed));
    if (text(fs.read('data/lease.json')) !== 'new content, longer than the old') {
      t.fail(`seed ${seed}: ${text(fs.read('data/lease.json'))}`);
      return;
    }
  }
  t.pass('200 crashes after the write: always the new content');
});

t.test('a failure or a crash at any step leaves the old content or the new one, never a torn file', async (t) => {
  const seen = new Set<string>();
  for (let step = 0; step < 6; step++) {
    for (let seed = 1; seed <= 100; seed++) {
      const fs = withOld();
      fs.failWriteAt = fs.writes + step;
      try {
        writeFileAtomic(fs, 'data/lease.json', 'new content, longer than the old');
      } catch {
        // The disk failed at this step; the caller sees an error.
      }
      fs.crash(new SeededRng(seed));
      const after = text(fs.read('data/lease.json'));
      if (after !== 'old content' && after !== 'new content, longer than the old') {
        t.fail(`step ${step}, seed ${seed}: ${JSON.stringify(after)}`);
        return;
      }
      seen.add(after);
    }
  }
  t.same([...seen].sort(), ['new content, longer than the old', 'old content'], 'both outcomes occur, nothing else');
});

t.test('parentDir', async (t) => {
  t.equal(parentDir('/var/lib/lashup/lease.json'), '/var/lib/lashup');
  t.equal(parentDir('/lease.json'), '/');
  t.equal(parentDir('lease.json'), '.');
});
