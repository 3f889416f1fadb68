/**
 * The `lashup` command for tests that start daemons as processes. They run the compiled build
 * (`npm test` builds first): starting through the TypeScript loader costs about 10 s of CPU per
 * process, which with nine daemons on two cores starved them into missing their deadlines.
 * Run on its own, a test rebuilds (and re-bundles) when `dist/` is older than `src/`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { must } from './netns.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const main = join(root, 'dist', 'src', 'cli', 'main.js');

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

let built: Promise<void> | undefined;

/** argv prefix that runs the CLI: [node, dist/src/cli/main.js]. */
export async function lashupCommand(): Promise<string[]> {
  built ??= (async () => {
    if (existsSync(main) && statSync(main).mtimeMs >= newest(join(root, 'src'))) return;
    await must(['npx', 'tsc', '-p', join(root, 'tsconfig.build.json')], 180_000);
    await must([process.execPath, join(root, 'tools', 'bundle.mjs')], 60_000);
  })();
  await built;
  return [process.execPath, main];
}
