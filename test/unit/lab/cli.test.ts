import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EXIT, run } from '../../../src/cli/index.js';

function capture(): { io: { out(s: string): void; err(s: string): void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (s) => (out += s), err: (s) => (err += s) }, out: () => out, err: () => err };
}

t.test('lashup lab validate / run: codes and messages without building anything', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-lab-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ name: 'good', agents: 2, steps: [{ do: 'kill', nodes: ['leader'] }] }));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ name: 'bad', agents: 2, steps: [{ do: 'kill', nodes: ['a7'] }] }));

  const ok = capture();
  t.equal(await run(['lab', 'validate', good], ok.io), EXIT.ok);
  t.match(ok.out(), /valid scenario "good": 3 masters, 2 agents, 1 steps x 1/);

  const refused = capture();
  t.equal(await run(['lab', 'validate', bad], refused.io), EXIT.config);
  t.match(refused.err(), /steps\[0\]\.nodes\[0\] = "a7"; expected a node of this scenario: m1-m3, a4-a5 or "leader" \(LASHUP_ERR_LAB_SCENARIO\)/);

  const runBad = capture();
  t.equal(await run(['lab', 'run', bad, '--out', join(dir, 'out')], runBad.io), EXIT.config, 'run refuses an invalid file before building anything');

  const absent = capture();
  t.equal(await run(['lab', 'validate', join(dir, 'none.json')], absent.io), EXIT.config);
  t.match(absent.err(), /cannot read .*none\.json/);

  const sub = capture();
  t.equal(await run(['lab', 'play', good], sub.io), EXIT.usage);
  t.match(sub.err(), /lab "play" is not a lab command; expected run, validate or convergence/);

  for (const [args, message] of [
    [['lab', 'convergence', '--agents', '1'], /--agents "1" is not valid; expected an integer from 2 to 32/],
    [['lab', 'convergence', '--repeat', 'x'], /--repeat "x" is not valid; expected an integer from 1 to 20/],
    [['lab', 'convergence', good], /lab convergence takes no scenario file/],
    [['lab', 'run', good, '--agents', '3'], /--agents and --repeat go with lab convergence/],
    [['lab', 'validate'], /lab validate needs a scenario file/],
  ] as const) {
    const c = capture();
    t.equal(await run([...args], c.io), EXIT.usage, args.join(' '));
    t.match(c.err(), message);
  }

  const short = capture();
  t.equal(await run(['lab', 'run'], short.io), EXIT.usage);
  const help = capture();
  t.equal(await run(['lab', '--help'], help.io), EXIT.ok);
  t.match(help.out(), /schemas\/lab-scenario\.schema\.json/);
});
