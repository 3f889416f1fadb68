/**
 * An esbuild plugin for tools/bundle.mjs: the bundled dependencies sort strings by code unit, not
 * through ICU.
 *
 * Why: @libp2p/peer-store and @libp2p/peer-record sort protocol names, multiaddrs and map keys
 * with `String.prototype.localeCompare`, only to store and compare them in one stable order (every
 * peer-store merge: each identify, each connection). `localeCompare` goes through ICU's collator,
 * which pages ICU's collation tables in from the node binary's read-only data: a one-node daemon
 * held 2.0-2.3 MiB more of the binary resident for it (lone node, 12 s after start, this machine,
 * Node 20: /usr/bin/node's read-only data 13.0 vs 11.0 MiB, text 22.1 vs 21.8 MiB, same run with
 * `localeCompare` replaced). Nothing in those sorts needs a locale: any total order that is the
 * same in every process does, and the order of UTF-16 code units is one. (A peer store written by
 * an older build is not re-sorted, and need not be: the order is only ever compared with itself.)
 *
 * How: in every dependency file that calls `<receiver>.localeCompare(`, the call becomes
 * `__lashupOrdinalCompare(<receiver>, ` (the argument and the closing parenthesis stay), and the
 * helper is declared at the end of the file (a hoisted function: callable anywhere in the file,
 * and the file's directives and line numbers stay as they were). A receiver is a whole chain of
 * names, `.name` and `()` steps (`a`, `a.multiaddr.toString()`), which covers every call in
 * today's dependencies; the chain must not continue something before it (`x[0].a`, `f(y).a`,
 * `new X().a`: rewriting its tail alone would change what the code means). A call this does not
 * rewrite fails the build, naming the file, so a dependency update cannot bring the collator back
 * unnoticed. lashup's own code does not call `localeCompare`
 * (test/unit/tooling/ordinal-compare.test.ts checks the whole bundle).
 */
import { readFile } from 'node:fs/promises';

/** Name of the helper each rewritten file defines. */
export const ORDINAL_COMPARE = '__lashupOrdinalCompare';

// Not inside a name, not after a `.` (the tail of a longer chain), not after `new` (`new X().a` is `(new X()).a`).
const CALL = /(?<![\w$])(?<!\.\s*)(?<!\bnew\s+)((?:[A-Za-z_$][\w$]*)(?:\.[A-Za-z_$][\w$]*|\(\))*)\.localeCompare\(/g;

/**
 * `source` with its `localeCompare` calls rewritten, or undefined when it has none. Throws when
 * a call is left that the rewrite does not handle.
 */
export function rewriteLocaleCompare(source, path) {
  if (!source.includes('localeCompare')) return undefined;
  const rewritten = source.replace(CALL, `${ORDINAL_COMPARE}($1, `);
  if (rewritten.includes('localeCompare')) {
    throw new Error(`${path}: a localeCompare call the ordinal rewrite does not handle (tools/ordinal-compare.mjs); rewrite it there or sort it another way`);
  }
  return `${rewritten}\nfunction ${ORDINAL_COMPARE}(a, b) { const x = String(a), y = String(b); return x < y ? -1 : x > y ? 1 : 0; }\n`;
}

/** The esbuild plugin: applies rewriteLocaleCompare to every JavaScript file under node_modules. */
export const ordinalComparePlugin = {
  name: 'ordinal-compare',
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/].*\.[cm]?js$/ }, async (args) => {
      const contents = rewriteLocaleCompare(await readFile(args.path, 'utf8'), args.path);
      return contents === undefined ? undefined : { contents, loader: 'js' };
    });
  },
};
