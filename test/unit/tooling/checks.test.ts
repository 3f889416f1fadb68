/**
 * The checks CI runs (`npm run lint`: Biome's linter and formatter check, dependency-cruiser's
 * layering rules) each fail on a deliberately broken example, so a green lint means something.
 * The examples are written to a temporary directory with the repository's own configurations.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = (name: string): string => join(repo, 'node_modules', '.bin', name);

function exec(file: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 60_000, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, out: `${stdout}${stderr}` });
    });
  });
}

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-checks-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

// The repository's Biome configuration, made to look at the example's files (no git there).
const biomeConfig = readFileSync(join(repo, 'biome.jsonc'), 'utf8')
  .replace(/"\$schema": "[^"]*",/, '')
  .replace(/"vcs": \{[^}]*\},/, '"vcs": { "enabled": false },')
  .replace(/"includes": \[[^\]]*\]/, '"includes": ["src/**/*.ts"]');

t.test('the linter fails on a forgotten promise and an assignment in a condition', async (t) => {
  const dir = tree({
    'biome.jsonc': biomeConfig,
    'src/bad.ts': 'export async function save(): Promise<void> {}\n\nexport function run(a: number, b: number): number {\n  save();\n  if ((a = b)) return a;\n  return 0;\n}\n',
  });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await exec(bin('biome'), ['lint', '--error-on-warnings', '.'], dir);
  t.not(r.code, 0, 'lint fails');
  t.match(r.out, /noFloatingPromises/, 'names the forgotten promise');
  t.match(r.out, /noAssignInExpressions/, 'names the assignment');
});

t.test('the formatter check fails on unformatted code and passes once formatted', async (t) => {
  const dir = tree({ 'biome.jsonc': biomeConfig, 'src/ugly.ts': 'export const x = {a:1,b:"two"}\n' });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await exec(bin('biome'), ['format', '.'], dir);
  t.not(r.code, 0, 'format check fails');
  t.match(r.out, /ugly\.ts/, 'names the file');
  t.equal((await exec(bin('biome'), ['format', '--write', '.'], dir)).code, 0);
  t.equal(readFileSync(join(dir, 'src/ugly.ts'), 'utf8'), "export const x = { a: 1, b: 'two' };\n", 'formatted as the repository formats');
  t.equal((await exec(bin('biome'), ['format', '.'], dir)).code, 0, 'and then passes');
});

t.test('the layering check fails on a cycle, a deep import, node:* in a pure core and a test double in production', async (t) => {
  const dir = tree({
    'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true } }),
    'package.json': JSON.stringify({ type: 'module' }),
    'src/a/index.ts': "export { x } from './x.js';\n",
    'src/a/x.ts': "import { y } from '../b/y.js';\nexport const x = (): number => y() + 1;\n",
    'src/b/index.ts': "export { y } from './y.js';\n",
    'src/b/y.ts': "import { x } from '../a/x.js';\nexport const y = (): number => (x.length > 5 ? 0 : 1);\n",
    'src/crdt/index.ts': "import { readFileSync } from 'node:fs';\nexport const z = (): string => readFileSync('/dev/null', 'utf8');\n",
    'src/testing/index.ts': 'export const fake = 1;\n',
    'src/daemon/index.ts': "import { fake } from '../testing/index.js';\nexport const d = fake;\n",
  });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(repo, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  const r = await exec(bin('depcruise'), ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], dir);
  t.not(r.code, 0, 'layering check fails');
  t.match(r.out, /no-circular/, 'the cycle a/x <-> b/y');
  t.match(r.out, /no-deep-import: src\/a\/x\.ts → src\/b\/y\.ts/, 'the import past b/index.ts');
  t.match(r.out, /pure-core-no-io: src\/crdt\/index\.ts → node:fs|pure-core-no-io: src\/crdt\/index\.ts → fs/, 'node:fs in a pure core');
  t.match(r.out, /no-testing-in-production: src\/daemon\/index\.ts → src\/testing\/index\.ts/, 'a test double in production code');
});
