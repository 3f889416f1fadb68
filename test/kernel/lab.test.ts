/**
 * The lab as an operator runs it (issue 22): `lashup lab run SCENARIO.json` as a process, on a
 * real kernel. A short scenario (3 masters + 4 agents: a partition of the masters with agents
 * on both sides, the heal, a SIGKILL and the restart; CNI and, where dockerd is installed,
 * Docker containers on every agent) must end with exit 0 and a report whose
 * invariants all held and whose events all converged; the HTML report must render in headless
 * Chromium with its charts drawn (pixels of the series' colours in the screenshot, the series
 * in the DOM, no console errors). A second scenario with a deliberately wrong expectation must
 * exit 1 and name it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BUSYBOX, CNI_PLUGIN_DIR, DOCKERD } from '../../src/demo/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { kernelTestSkip, netnsRequired, run } from '../helpers/netns.js';
import { countColour, readPng } from '../helpers/png.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = [`${CNI_PLUGIN_DIR}/bridge`, CHROMIUM].filter((p) => !existsSync(p));
const kernelSkip = await kernelTestSkip();
const why = `the lab test needs ${missing.join(', ')} (Debian packages containernetworking-plugins, chromium)`;
if (kernelSkip === false && missing.length > 0 && netnsRequired()) throw new Error(why);
const skip = kernelSkip || (missing.length > 0 ? why : false);
const command = skip === false ? await lashupCommand() : [];

interface Report {
  ok: boolean;
  containers: { agent: string; kind: string; ip: string }[];
  invariants: Record<string, number>;
  violations: { invariant: string; message: string }[];
  events: { kind: string; membersMs?: number; kernelsMs?: number; pingsMs?: number; noPings?: boolean }[];
  samples: unknown[];
  faults: { kind: string }[];
  convergence: Record<string, Record<string, { n: number; p50?: number; p99?: number }>>;
}

/** Runs `lashup lab run` and resolves with its exit code and output (bounded: 10 minutes). */
function lab(file: string, out: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const [node, ...args] = command as [string, ...string[]];
    execFile(node, [...args, 'lab', 'run', file, '--out', out], { timeout: 600_000, encoding: 'utf8', maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, output: stdout + stderr });
    });
  });
}

t.test('lab run: partition, heal, SIGKILL and restart; every invariant holds; the report renders', { skip, timeout: 900_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-lab-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const scenario = {
    name: 'ci-partition-kill',
    description: 'The masters split one against two with agents on both sides, healed; then an agent is SIGKILLed and started again.',
    agents: 4,
    settleMs: 120_000,
    steps: [
      {
        do: 'partition',
        groups: [
          ['m1', 'a4', 'a5'],
          ['m2', 'm3', 'a6', 'a7'],
        ],
      },
      { do: 'settle' },
      { do: 'expect', from: 'a4', to: 'a5', reachable: true },
      { do: 'expect', from: 'a4', to: 'a6', reachable: false },
      { do: 'heal' },
      { do: 'settle' },
      { do: 'kill', nodes: ['a7'] },
      { do: 'settle' },
      { do: 'start', nodes: ['down'] },
      { do: 'settle' },
      { do: 'expect', from: 'a4', to: 'a7', reachable: true },
    ],
  };
  const file = join(dir, 'scenario.json');
  writeFileSync(file, JSON.stringify(scenario));
  const out = join(dir, 'report');
  const result = await lab(file, out);
  t.comment(result.output.split('\n').slice(-16).join('\n'));
  t.equal(result.code, 0, `exit 0: ${result.output.slice(-1500)}`);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
  t.equal(report.ok, true);
  t.same(report.violations, []);
  t.ok(
    Object.values(report.invariants).every((n) => n === 0),
    'every invariant held',
  );
  t.same(
    report.events.map((e) => e.kind),
    ['form', 'partition', 'heal', 'kill', 'start'],
  );
  for (const e of report.events) {
    t.ok(e.membersMs !== undefined && e.kernelsMs !== undefined, `${e.kind}: membership and kernels converged`);
    t.ok(e.pingsMs !== undefined || (e.kind === 'form' && e.noPings === true), `${e.kind}: pings converged`);
  }
  t.ok(report.samples.length >= 10, `${report.samples.length} observations`);
  // docker "auto": with dockerd and busybox-static (CI installs both), a Docker container per agent joins the ping checks.
  const withDocker = DOCKERD !== undefined && existsSync(BUSYBOX);
  if (netnsRequired()) t.ok(withDocker, 'CI has dockerd and busybox-static');
  t.same(
    report.containers.map((c) => `${c.agent} ${c.kind}`),
    ['a4', 'a5', 'a6', 'a7'].flatMap((a) => [`${a} cni`, ...(withDocker ? [`${a} docker`] : [])]),
  );
  t.equal(new Set(report.containers.map((c) => c.ip)).size, report.containers.length, 'every container has an address of its own');
  t.same([...new Set(report.faults.map((f) => f.kind))].sort(), ['down', 'partition']);
  t.ok(report.convergence['partition']?.['membersMs']?.p50 !== undefined);

  // The HTML in headless Chromium: a screenshot with the charts drawn, the DOM with every series.
  const html = join(out, 'report.html');
  const shot = join(dir, 'shot.png');
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0', '--window-size=1100,1600'];
  const pic = await run([CHROMIUM, ...flags, `--screenshot=${shot}`, `file://${html}`], 120_000);
  t.equal(pic.code, 0, `chromium: ${pic.stderr.slice(-500)}`);
  t.notMatch(pic.stderr, /CONSOLE|Uncaught|Failed to load resource/, 'no console errors, nothing failed to load');
  t.ok(statSync(shot).size > 20_000, `screenshot of ${statSync(shot).size} bytes`);
  const image = readPng(readFileSync(shot));
  t.same([image.width, image.height], [1100, 1600]);
  // Colours of html.ts: the membership line, the routes line, agreeing lanes, the partition shading.
  for (const [what, colour] of [
    ['membership line', '#2b6cb0'],
    ['routes line', '#2f855a'],
    ['agreeing lanes', '#9ae6b4'],
    ['partition window', '#fed7d7'],
  ] as const)
    t.ok(countColour(image, colour, 8) > 300, `${what} drawn (${countColour(image, colour, 8)} pixels of ${colour})`);
  const dom = await run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--dump-dom', `file://${html}`], 120_000);
  t.equal(dom.code, 0);
  for (const id of ['timeline', 'lanes', 'convergence']) t.match(dom.stdout, `<svg id="${id}"`, `chart ${id}`);
  t.match(dom.stdout, /<polyline data-series="members" [^>]*points="[\d., ]{20,}"/, 'membership series with points');
  t.match(dom.stdout, /<polyline data-series="routes" [^>]*points="[\d., ]{20,}"/, 'routes series with points');
  for (const kind of ['partition', 'heal', 'kill', 'start']) t.match(dom.stdout, `data-series="conv-${kind}-membersMs"`, `convergence dots for ${kind}`);
  t.match(dom.stdout, 'Every invariant held.');
});

t.test('lab run: a broken expectation exits 1 and names it', { skip, timeout: 600_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-lab-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'broken.json');
  writeFileSync(file, JSON.stringify({ name: 'ci-broken', agents: 2, docker: false, settleMs: 120_000, steps: [{ do: 'settle' }, { do: 'expect', from: 'a4', to: 'a5', reachable: false }] }));
  const result = await lab(file, join(dir, 'report'));
  t.equal(result.code, 1, result.output.slice(-1500));
  const report = JSON.parse(readFileSync(join(dir, 'report', 'report.json'), 'utf8')) as Report;
  t.equal(report.ok, false);
  t.same(
    report.violations.map((v) => v.invariant),
    ['expectation'],
  );
  t.match(report.violations[0]?.message, /expected a4's container .* not to reach a5's .*; it did/);
  t.match(readFileSync(join(dir, 'report', 'report.html'), 'utf8'), /1 violation\./);
});
