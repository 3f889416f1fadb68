import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const child = fileURLToPath(new URL('../../helpers/code-cache-child.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lashup-code-cache-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A CommonJS program using what the bundled one uses (require, module, __dirname), answering `value`. */
const programText = (value: number): string =>
  `const { basename } = require('node:path');\nexports.answer = function answer() { return basename(__dirname).length > 0 ? ${value} : -1; };\nmodule.exports.more = [1, 2, 3].map((x) => x * 2);\n`;

function load(program: string, cache: string, options: { write?: boolean; flags?: string[] } = {}): Promise<{ codeCache: string; answer: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...process.execArgv, ...(options.flags ?? []), child, program, cache, ...(options.write === true ? ['write'] : [])],
      { encoding: 'utf8', timeout: 60_000 },
      (err, out, stderr) => {
        if (err !== null) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(out) as { codeCache: string; answer: number });
      },
    );
  });
}

t.test('no cache, then the written one is used; a program of the same length but other text is never run from it', async (t) => {
  const program = join(dir, 'p1.cjs');
  const cache = join(dir, 'p1.cjs.cache');
  writeFileSync(program, programText(42));
  t.same(await load(program, cache, { write: true }), { codeCache: 'missing', answer: 42 });
  t.same(await load(program, cache), { codeCache: 'used', answer: 42 }, 'the next start runs from the cache');
  // V8 checks a cache only against the source's length: the hash must catch this one.
  writeFileSync(program, programText(43));
  t.equal(readFileSync(program).length, programText(42).length);
  t.same(await load(program, cache), { codeCache: 'stale', answer: 43 }, 'stale: the new text runs');
});

t.test('a cache V8 refuses (other Node flags, damaged data) is reported and the program still runs', async (t) => {
  const program = join(dir, 'p2.cjs');
  const cache = join(dir, 'p2.cjs.cache');
  writeFileSync(program, programText(7));
  await load(program, cache, { write: true });
  t.same(await load(program, cache, { flags: ['--max-semi-space-size=2'] }), { codeCache: 'rejected', answer: 7 }, 'made with other flags');
  const good = readFileSync(cache);
  const damaged = Buffer.from(good);
  damaged.fill(0xa5, 32 + 16, 32 + 64);
  writeFileSync(cache, damaged);
  t.same(await load(program, cache), { codeCache: 'rejected', answer: 7 }, 'the right hash but damaged data');
  writeFileSync(cache, good.subarray(0, 20));
  t.same(await load(program, cache), { codeCache: 'stale', answer: 7 }, 'shorter than its hash');
});

t.test('a cache path that cannot be read is reported as unreadable', async (t) => {
  const program = join(dir, 'p3.cjs');
  const cache = join(dir, 'p3-cache-is-a-directory');
  writeFileSync(program, programText(9));
  mkdirSync(cache);
  t.same(await load(program, cache), { codeCache: 'unreadable', answer: 9 });
});
