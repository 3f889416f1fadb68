/**
 * The bundle's rewrite of dependencies' `localeCompare` sorts (tools/ordinal-compare.mjs): the
 * rewritten code orders strings the same way in every process without ICU's collator, a call the
 * rewrite cannot handle fails the build, and the shipped bundle calls `localeCompare` nowhere.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ORDINAL_COMPARE, rewriteLocaleCompare } from '../../../tools/ordinal-compare.mjs';
import { lashupCommand } from '../../helpers/lashup-cli.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Evaluates `source` (a function body) and returns what it returns. */
const run = (source: string): unknown => new Function(source)();

t.test('the three receiver shapes of the dependencies are rewritten and sort by code unit', async (t) => {
  const source = [
    "'use strict';",
    "const xs = ['b', 'B', 'a', 'ä', 'A'];",
    'const plain = [...xs].sort((a, b) => a.localeCompare(b));',
    'const called = [...xs].map((s) => ({ toString: () => s })).sort((a2, b2) => a2.toString().localeCompare(b2.toString())).map(String);',
    'const member = xs.map((s) => ({ multiaddr: { toString: () => s } })).sort((a, b) => a.multiaddr.toString().localeCompare(b.multiaddr.toString())).map((x) => x.multiaddr.toString());',
    'return { plain, called, member, strict: this === undefined };',
  ].join('\n');
  const rewritten = rewriteLocaleCompare(source, 'example.js');
  if (rewritten === undefined) throw new Error('nothing rewritten');
  t.notMatch(rewritten, /localeCompare/, 'no call left');
  t.ok(rewritten.startsWith("'use strict';\n"), 'the helper comes after the code: directives and line numbers stay');
  const out = run(rewritten) as { plain: string[]; called: string[]; member: string[]; strict: boolean };
  // Code-unit order: capitals before lower case, the umlaut last; ICU's collator would give a A ä b B.
  t.same(out.plain, ['A', 'B', 'a', 'b', 'ä']);
  t.same(out.called, ['A', 'B', 'a', 'b', 'ä']);
  t.same(out.member, ['A', 'B', 'a', 'b', 'ä']);
  t.equal(out.strict, true, "the 'use strict' directive still applies");
});

t.test('a file without localeCompare is left as it is', async (t) => {
  t.equal(rewriteLocaleCompare('export const a = [2, 1].sort();', 'plain.js'), undefined);
});

t.test('a call the rewrite does not handle fails, naming the file', async (t) => {
  t.throws(() => rewriteLocaleCompare("const s = ['b', 'a'].sort((a, b) => (a + '').localeCompare(b));", 'node_modules/x/odd.js'), /node_modules\/x\/odd\.js: a localeCompare call/);
  t.throws(() => rewriteLocaleCompare('const c = String.prototype.localeCompare;', 'node_modules/x/ref.js'), /ref\.js/);
  // Only the tail of these chains matches the receiver pattern; rewriting it would change the code.
  t.throws(() => rewriteLocaleCompare('const r = xs[0].name.localeCompare(y);', 'node_modules/x/index.js'), /index\.js/);
  t.throws(() => rewriteLocaleCompare('const r = f(k).name.localeCompare(y);', 'node_modules/x/call.js'), /call\.js/);
  t.throws(() => rewriteLocaleCompare('const r = new Name().localeCompare(y);', 'node_modules/x/new.js'), /new\.js/);
});

t.test('the shipped bundle calls localeCompare nowhere', async (t) => {
  await lashupCommand(); // builds dist/ (and the bundle) when older than src/
  const dir = join(repo, 'dist', 'bundle');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js') || f.endsWith('.cjs'));
  t.ok(files.includes('lashup-main.cjs'), 'the bundle is built');
  const calling = files.filter((f) => readFileSync(join(dir, f), 'utf8').includes('localeCompare'));
  t.same(calling, [], 'no bundled file calls the collator');
  t.ok(
    files.some((f) => readFileSync(join(dir, f), 'utf8').includes(ORDINAL_COMPARE)),
    'the libp2p sorts are in the bundle, rewritten (if this fails, the dependencies stopped sorting with localeCompare and the plugin can go)',
  );
});
