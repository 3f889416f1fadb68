/**
 * The status page and the metrics of a live namespace cluster (issue 23): 3 masters and 3
 * agents, a CNI container on one agent.
 *
 * - `promtool check metrics` has nothing to say about a master's and an agent's /metrics.
 * - Headless Chromium, inside an agent's namespace, opens http://127.0.0.1:62080/ui (over TCP,
 *   without the token): members, routes and address usage are shown; a screenshot is taken and
 *   its colours counted (alive badges, the usage bar); then an agent is SIGKILLed and its row
 *   turns "failed" on the same page (a marker set in the page before the kill is still there:
 *   no reload); no console error, exception or failed load happened.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CNI_PLUGIN_DIR, NetnsCluster } from '../../src/demo/index.js';
import { Browser } from '../helpers/cdp.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { eventually, kernelTestSkip, netnsRequired, run } from '../helpers/netns.js';
import { countColour, readPng } from '../helpers/png.js';

const CHROMIUM = '/usr/bin/chromium';
const PROMTOOL = '/usr/bin/promtool';
const missing = [`${CNI_PLUGIN_DIR}/bridge`, CHROMIUM, PROMTOOL].filter((p) => !existsSync(p));
const kernelSkip = await kernelTestSkip();
const why = `the status page test needs ${missing.join(', ')} (Debian packages containernetworking-plugins, chromium, prometheus)`;
if (kernelSkip === false && missing.length > 0 && netnsRequired()) throw new Error(why);
const skip = kernelSkip || (missing.length > 0 ? why : false);
const command = skip === false ? await lashupCommand() : [];

async function promtoolCheck(text: string): Promise<{ code: number; out: string }> {
  const result = await run([PROMTOOL, 'check', 'metrics'], 60_000, { input: text });
  return { code: result.code, out: `${result.stdout}${result.stderr}`.trim() };
}

interface MemberRow {
  name: string;
  state: string;
}

t.test('the status page of a live cluster, and promtool on its metrics', { skip, timeout: 600_000 }, async (t) => {
  const cluster = await NetnsCluster.create({ agents: 3, command, prefix: 'lxu' });
  let browser: Browser | undefined;
  t.teardown(async () => {
    await browser?.close();
    await cluster.destroy();
  });
  t.ok(await cluster.converge(120_000), 'three agents leased and routed');
  const container = await cluster.cni('a4', 'ADD', 'ui1');
  t.equal(container.code, 0, `a container on a4: ${container.stderr}`);

  // Metrics: the names, types and units Prometheus expects, on a master and on an agent.
  for (const name of ['m1', 'a4']) {
    const metrics = await cluster.api(name, 'GET', '/metrics');
    t.equal(metrics.status, 200);
    t.match(metrics.body, /^lashup_members\{state="alive"\} /m, `${name} exports metrics`);
    const check = await promtoolCheck(metrics.body);
    t.equal(check.code, 0, `promtool check metrics on ${name}: ${check.out}`);
    t.equal(check.out, '', `promtool reports no problem on ${name}'s /metrics`);
  }
  const a4metrics = (await cluster.api('a4', 'GET', '/metrics')).body;
  t.match(a4metrics, /^lashup_usage_addresses_used\{network="dcos",kind="cni"\} 1$/m, "the agent's container shows in its usage gauges");
  t.match((await cluster.api('m1', 'GET', '/metrics')).body, /^lashup_usage_blocks_used\{network="dcos",family="4"\} 3$/m, 'the masters count three agent blocks');

  // The page, from inside a4's namespace, over TCP without the token.
  const ns = cluster.nodes.get('a4')?.host.ns as string;
  browser = await Browser.launch(CHROMIUM, { argvPrefix: ['nsenter', `--net=/run/netns/${ns}`], width: 1300, height: 1000 });
  await browser.navigate('http://127.0.0.1:62080/ui');
  const b = browser;
  const members = (): Promise<MemberRow[]> => b.evaluate<MemberRow[]>('[...document.querySelectorAll("[data-member]")].map((r) => ({ name: r.dataset.member, state: r.dataset.state }))');
  const everyoneAlive = await eventually(async () => {
    const rows = await members();
    return rows.length === 6 && rows.every((r) => r.state === 'alive');
  }, 60_000);
  t.ok(everyoneAlive, `the page lists six members alive: ${JSON.stringify(await members())}`);
  const programmed = await eventually(async () => (await b.evaluate<number>('Number(document.querySelector("[data-route-class=programmed]")?.dataset.count ?? 0)')) > 0, 30_000);
  t.ok(programmed, 'the page shows programmed routes');
  const routeText = await b.evaluate<string>('document.querySelector("#routes").innerText');
  t.match(routeText, /\d+ programmed/);
  t.match(routeText, /remote agents 2/, 'a4 routes to the two other agents');
  const usage = await b.evaluate<string[]>('[...document.querySelectorAll("[data-usage]")].map((r) => r.dataset.usage + " " + r.innerText.replace(/\\s+/g, " ").trim())');
  t.ok(
    usage.some((u) => /^dcos\/cni dcos cni 1 \d+/.test(u)),
    `the page shows a4's container address usage: ${JSON.stringify(usage)}`,
  );
  t.match(await b.evaluate<string>('document.querySelector("#usage").innerText'), /lease: VTEP 44\.128\./, "the page shows a4's lease");
  t.match(await b.evaluate<string>('document.querySelector("header").innerText'), /ready/, 'the agent is ready');

  const png = await b.screenshot();
  writeFileSync(join(tmpdir(), 'lashup-ui-test.png'), png);
  const image = readPng(png);
  t.equal(image.width, 1300);
  t.ok(countColour(image, '#1a7f37') > 1500, `alive badges and bars are drawn in green (${countColour(image, '#1a7f37')} px)`);
  t.ok(countColour(image, '#24292f') > 1300 * 30, 'the header is drawn');

  // A member killed during the test shows as failed without reloading the page.
  await b.evaluate('(window.__lashupMarker = "before-kill", true)');
  t.ok(await cluster.signal('a6', 'SIGKILL'), 'a6 killed');
  const failedShown = await eventually(async () => (await members()).some((r) => r.name === 'a6' && r.state === 'failed'), 60_000);
  t.ok(failedShown, `a6 shows as failed: ${JSON.stringify(await members())}`);
  t.equal(await b.evaluate<string>('window.__lashupMarker'), 'before-kill', 'the page was not reloaded');
  const failedShot = await b.screenshot();
  writeFileSync(join(tmpdir(), 'lashup-ui-test-failed.png'), failedShot);
  const failedPng = readPng(failedShot);
  t.ok(countColour(failedPng, '#cf222e') > 100, `the failed member is drawn in red (${countColour(failedPng, '#cf222e')} px)`);

  t.same(b.problems, [], 'no console errors, exceptions or failed loads');
});
