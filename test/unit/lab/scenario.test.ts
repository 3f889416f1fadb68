import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { convergenceScenario, LabError, parseScenario, SCENARIO_FIELDS, STEP_FIELDS, validateScenario } from '../../../src/lab/index.js';

const root = join(import.meta.dirname, '..', '..', '..');
const base = { name: 'x', agents: 2, steps: [{ do: 'settle' }] };

function refusal(raw: unknown): LabError {
  try {
    validateScenario(raw, 'f.json');
  } catch (err) {
    if (err instanceof LabError) return err;
    throw err;
  }
  throw new Error('accepted');
}

t.test('a minimal scenario gets the documented defaults', async (t) => {
  const s = validateScenario(base);
  t.same(
    { spare: s.spareAgents, c: s.containersPerAgent, r: s.repeat, settle: s.settleMs, sample: s.sampleIntervalMs, pings: s.pingsPerSample, grace: s.falseFailureGraceMs },
    { spare: 0, c: 1, r: 1, settle: 60_000, sample: 1000, pings: 4, grace: 15_000 },
  );
  t.equal(s.docker, 'auto');
  t.equal(validateScenario({ ...base, docker: false }).docker, false);
  t.equal(s.description, '');
  t.notOk('overlay' in s);
});

t.test('every step kind parses, with node keywords where they apply', async (t) => {
  const s = validateScenario({
    ...base,
    spareAgents: 2,
    overlay: { networks: [] },
    steps: [
      { do: 'kill', nodes: ['leader', 'a4'] },
      { do: 'stop', nodes: ['m2'] },
      { do: 'start', nodes: ['down'] },
      { do: 'restart', nodes: ['leader'] },
      { do: 'partition', groups: [['m1'], ['a4', 'a5']], oneWay: true },
      { do: 'partition', groups: [['m1'], ['a4']] },
      { do: 'heal' },
      { do: 'loss', between: ['a4', 'a5'], percent: 10 },
      { do: 'release', nodes: ['a5'] },
      { do: 'join', count: 2 },
      { do: 'overlay', overlay: { networks: [] } },
      { do: 'overlay', overlay: {}, nodes: ['a4'] },
      { do: 'wait', ms: 0 },
      { do: 'settle' },
      { do: 'expect', from: 'a4', to: 'a6', reachable: false },
      { do: 'container', agent: 'a5' },
    ],
  });
  t.equal(s.steps.length, 16);
  t.same(s.steps[15], { do: 'container', agent: 'a5' });
  t.same(s.steps[4], { do: 'partition', groups: [['m1'], ['a4', 'a5']], oneWay: true });
  t.same(s.steps[5], { do: 'partition', groups: [['m1'], ['a4']], oneWay: false }, 'oneWay defaults to false');
  t.same(s.steps[10], { do: 'overlay', overlay: { networks: [] }, nodes: ['m1', 'm2', 'm3', 'a4', 'a5'] }, 'overlay restarts masters, then the first agents');
});

t.test('refusals name the path, the bad value and what is valid', async (t) => {
  const cases: [unknown, string, RegExp][] = [
    [[], '', /an object/],
    [{ ...base, extra: 1 }, 'extra', /no such field; valid fields: \$schema, name/],
    [{ ...base, name: 'Bad Name' }, 'name', /lower-case/],
    [{ ...base, agents: 0 }, 'agents', /integer from 1 to 32/],
    [{ ...base, agents: 2.5 }, 'agents', /integer/],
    [{ ...base, settleMs: 10 }, 'settleMs', /from 1000 to 600000/],
    [{ ...base, overlay: [] }, 'overlay', /overlay configuration object/],
    [{ ...base, docker: 'yes' }, 'docker', /true, false or "auto"/],
    [{ ...base, docker: true, containersPerAgent: 0 }, 'docker', /false when containersPerAgent is 0/],
    [{ ...base, steps: [] }, 'steps', /array of 1 to 500/],
    [{ ...base, steps: [{ do: 'explode' }] }, 'steps[0].do', /one of kill, stop, start/],
    [{ ...base, steps: ['kill'] }, 'steps[0]', /step object/],
    [{ ...base, steps: [{ do: 'kill', nodes: ['a9'] }] }, 'steps[0].nodes[0]', /m1-m3, a4-a5 or "leader"/],
    [{ ...base, steps: [{ do: 'start', nodes: ['leader'] }] }, 'steps[0].nodes[0]', /or "down"/],
    [{ ...base, steps: [{ do: 'kill', nodes: ['a4', 'a4'] }] }, 'steps[0].nodes[1]', /each node once/],
    [{ ...base, steps: [{ do: 'kill', nodes: ['a4'], ms: 3 }] }, 'steps[0].ms', /valid fields: do, nodes/],
    [{ ...base, steps: [{ do: 'release', nodes: ['m1'] }] }, 'steps[0].nodes[0]', /an agent of this scenario/],
    [{ ...base, steps: [{ do: 'partition', groups: [['a4']] }] }, 'steps[0].groups', /2 to 16/],
    [{ ...base, steps: [{ do: 'partition', groups: [['a4'], ['a4']] }] }, 'steps[0].groups[1][0]', /one group only/],
    [{ ...base, steps: [{ do: 'partition', groups: [['a4'], ['a5']], oneWay: 'yes' }] }, 'steps[0].oneWay', /true \(only packets from the first group/],
    [{ ...base, steps: [{ do: 'loss', between: ['a4', 'a4'], percent: 5 }] }, 'steps[0].between[1]', /other than between\[0\]/],
    [{ ...base, steps: [{ do: 'loss', between: ['a4', 'a5'], percent: 101 }] }, 'steps[0].percent', /0 to 100/],
    [{ ...base, steps: [{ do: 'overlay', overlay: 3 }] }, 'steps[0].overlay', /overlay configuration object/],
    [{ ...base, steps: [{ do: 'expect', from: 'a4', to: 'a4', reachable: true }] }, 'steps[0].to', /other than from/],
    [{ ...base, steps: [{ do: 'expect', from: 'a4', to: 'a5', reachable: 1 }] }, 'steps[0].reachable', /true or false/],
    [{ ...base, containersPerAgent: 0, steps: [{ do: 'expect', from: 'a4', to: 'a5', reachable: true }] }, 'steps[0].do', /containersPerAgent >= 1/],
    [{ ...base, spareAgents: 1, repeat: 2, steps: [{ do: 'join', count: 1 }] }, 'spareAgents', /at least 2/],
    [{ ...base, steps: [{ do: 'container', agent: 'm2' }] }, 'steps[0].agent', /an agent of this scenario: a4-a5/],
  ];
  for (const [raw, path, expected] of cases) {
    const err = refusal(raw);
    t.equal(err.code, 'LASHUP_ERR_LAB_SCENARIO');
    t.equal(err.details['path'], path, `path of ${JSON.stringify(raw).slice(0, 80)}`);
    t.match(err.message, expected);
    t.match(err.message, /^f\.json: /, 'the file is named');
  }
  t.throws(() => parseScenario('{ not json', 'x.json'), { code: 'LASHUP_ERR_LAB_SCENARIO', message: /x\.json: not JSON/ });
});

t.test('the JSON Schema documents exactly the fields the parser takes', async (t) => {
  const schema = JSON.parse(readFileSync(join(root, 'schemas', 'lab-scenario.schema.json'), 'utf8')) as {
    properties: Record<string, unknown>;
    required: string[];
    properties_steps?: never;
  };
  t.same(Object.keys(schema.properties), [...SCENARIO_FIELDS]);
  const steps = (schema.properties['steps'] as { items: { oneOf: { properties: Record<string, { const?: string }>; required: string[] }[] } }).items.oneOf;
  const documented = Object.fromEntries(steps.map((s) => [s.properties['do']?.const, Object.keys(s.properties).filter((k) => k !== 'do')]));
  t.same(documented, STEP_FIELDS);
  t.same(schema.required, ['name', 'agents', 'steps']);
});

t.test('every shipped scenario is valid', async (t) => {
  const files = readdirSync(join(root, 'scenarios')).filter((f) => f.endsWith('.json'));
  t.ok(files.length >= 5, `${files.length} scenarios`);
  for (const f of files) {
    const s = parseScenario(readFileSync(join(root, 'scenarios', f), 'utf8'), f);
    t.equal(`${s.name}.json`, f, 'named after its file');
    t.ok(s.description.length > 40, `${f} says what it shows`);
  }
});

t.test('lab convergence: every repetition joins, names, kills and restarts, releases what joined', async (t) => {
  const s = convergenceScenario(3, 2);
  t.same([s.agents, s.spareAgents, s.repeat], [3, 2, 1]);
  const kinds = s.steps.filter((x) => x.do !== 'settle').map((x) => x.do);
  t.same(kinds, ['join', 'container', 'kill', 'start', 'release', 'join', 'container', 'kill', 'start', 'release']);
  t.same(
    s.steps.filter((x) => x.do === 'release').map((x) => (x as { nodes: string[] }).nodes),
    [['a7'], ['a8']],
    'the agents that joined are released',
  );
  t.same(
    s.steps.filter((x) => x.do === 'kill').map((x) => (x as { nodes: string[] }).nodes),
    [['a5'], ['a6']],
    'victims rotate and a4 (the named container) is spared',
  );
  t.throws(() => convergenceScenario(1, 1), RangeError);
  t.throws(() => convergenceScenario(4, 0), RangeError);
});
