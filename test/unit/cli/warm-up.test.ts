import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import t from 'tap';
import { warmUp } from '../../../src/cli/warm-up.js';

t.test("the build's warm-up runs a master and an agent to the agent's lease, and leaves nothing behind", async (t) => {
  const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('lashup-warm-up-')));
  t.equal(await warmUp(), true, 'the agent got its lease: the cache covers the lease path');
  const left = readdirSync(tmpdir()).filter((f) => f.startsWith('lashup-warm-up-') && !before.has(f));
  t.same(left, [], 'its data directories are removed');
});
