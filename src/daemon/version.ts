/**
 * lashup's version, from package.json: put in by the bundler (`__LASHUP_VERSION__`, see
 * tools/bundle.mjs), or read from the package.json found above this module when it runs
 * unbundled (tests, dist/src). It used to be a string literal written in three places.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

declare const __LASHUP_VERSION__: string | undefined;

function fromPackageJson(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'lashup' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No package.json here: look one level up.
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

export const LASHUP_VERSION: string = typeof __LASHUP_VERSION__ === 'string' ? __LASHUP_VERSION__ : fromPackageJson();
