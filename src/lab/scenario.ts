/**
 * Lab scenarios: what `lashup lab run FILE` builds and plays. A scenario names the cluster (3
 * masters m1-m3, agents a4.. and spare agents for `join` after them), the containers per agent,
 * and a list of steps played in order. The JSON Schema `schemas/lab-scenario.schema.json`
 * documents the same format for editors; this parser is what the lab trusts, and every refusal
 * names the JSON path, the bad value and what would be valid (a test keeps the schema's field
 * lists equal to these).
 *
 * Invariant: a parsed scenario only names nodes it has (or `leader`), so the runner never meets
 * a name it cannot map to a namespace.
 */
import { describeValue } from '../common/index.js';
import { LabError, LabErrorCode } from './errors.js';

/**
 * A node: `m1`-`m3`, `a4`.. (agents then spare agents), `leader` (the masters' Raft leader when
 * the step runs; kill, stop, restart) or `down` (every node the lab stopped or killed and did
 * not release; start).
 */
export type NodeRef = string;

export type Step =
  | { do: 'kill' | 'stop' | 'start' | 'restart'; nodes: NodeRef[] }
  | { do: 'partition'; groups: NodeRef[][]; oneWay: boolean }
  | { do: 'heal' }
  | { do: 'loss'; between: [NodeRef, NodeRef]; percent: number }
  | { do: 'release'; nodes: NodeRef[] }
  | { do: 'join'; count: number }
  | { do: 'overlay'; overlay: Record<string, unknown>; nodes: NodeRef[] }
  | { do: 'wait'; ms: number }
  | { do: 'settle' }
  | { do: 'expect'; from: NodeRef; to: NodeRef; reachable: boolean }
  | { do: 'container'; agent: NodeRef };

export type StepKind = Step['do'];

export interface Scenario {
  name: string;
  description: string;
  /** Agents started with the cluster (a4 ..). */
  agents: number;
  /** Agents that `join` steps start later (named after the first ones). */
  spareAgents: number;
  /** CNI containers on the `dcos` network per agent (0: no ping checks). */
  containersPerAgent: number;
  /** Times the steps are played (convergence figures get p50/p99 over them). */
  repeat: number;
  /** How long every expectation has to hold again after an event before it is a violation. */
  settleMs: number;
  /** Milliseconds between two observations of every node. */
  sampleIntervalMs: number;
  /** Container pairs pinged per observation once the cluster settled. */
  pingsPerSample: number;
  /** A member seen failed while it ran and nothing stood between it and the observer for this long is a false failure. */
  falseFailureGraceMs: number;
  /** The overlay configuration of every node (DC/OS's networks when absent). */
  overlay?: Record<string, unknown>;
  /**
   * A Docker container per agent besides the CNI ones (a dockerd of the agent's own in its
   * namespace, the container on lashup's Docker network): 'auto' when dockerd and
   * busybox-static are installed.
   */
  docker: boolean | 'auto';
  steps: Step[];
}

/** Top-level fields, in the schema's order (a test compares them with the schema). */
export const SCENARIO_FIELDS = [
  '$schema',
  'name',
  'description',
  'agents',
  'spareAgents',
  'containersPerAgent',
  'repeat',
  'settleMs',
  'sampleIntervalMs',
  'pingsPerSample',
  'falseFailureGraceMs',
  'overlay',
  'docker',
  'steps',
] as const;

/** Each step kind with its fields besides `do` (a test compares them with the schema). */
export const STEP_FIELDS: Record<StepKind, readonly string[]> = {
  kill: ['nodes'],
  stop: ['nodes'],
  start: ['nodes'],
  restart: ['nodes'],
  partition: ['groups', 'oneWay'],
  heal: [],
  loss: ['between', 'percent'],
  release: ['nodes'],
  join: ['count'],
  overlay: ['overlay', 'nodes'],
  wait: ['ms'],
  settle: [],
  expect: ['from', 'to', 'reachable'],
  container: ['agent'],
};

/** Steps after which the lab measures convergence (every one but wait, settle and expect). */
export const EVENT_KINDS: readonly StepKind[] = ['kill', 'stop', 'start', 'restart', 'partition', 'heal', 'loss', 'release', 'join', 'overlay', 'container'];

export const MASTERS = ['m1', 'm2', 'm3'] as const;

/** Agent names a4 .. of a scenario with `agents + spareAgents` of them. */
export function agentNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `a${4 + i}`);
}

class Reader {
  constructor(private readonly source: string) {}

  fail(path: string, value: unknown, expected: string): never {
    throw new LabError(LabErrorCode.Scenario, `${this.source}: ${path || '(top level)'} = ${describeValue(value)}; expected ${expected}`, {
      path,
      value: describeValue(value),
      expected,
    });
  }

  object(path: string, value: unknown, fields: readonly string[]): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, value, 'an object');
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) if (!fields.includes(key)) this.fail(join(path, key), obj[key], `no such field; valid fields: ${fields.join(', ')}`);
    return obj;
  }

  int(path: string, value: unknown, min: number, max: number, fallback?: number): number {
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) this.fail(path, value, `an integer from ${min} to ${max}`);
    return value;
  }

  string(path: string, value: unknown, pattern: RegExp, what: string, fallback?: string): string {
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string' || !pattern.test(value)) this.fail(path, value, what);
    return value;
  }

  array(path: string, value: unknown, min: number, max: number): unknown[] {
    if (!Array.isArray(value) || value.length < min || value.length > max) this.fail(path, value, `an array of ${min} to ${max} items`);
    return value;
  }
}

const join = (path: string, key: string | number): string => (typeof key === 'number' ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`);

/** Parses and validates a scenario file's text; throws LabError (LASHUP_ERR_LAB_SCENARIO) naming the first problem. */
export function parseScenario(text: string, source = 'scenario'): Scenario {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new LabError(LabErrorCode.Scenario, `${source}: not JSON (${err instanceof Error ? err.message : String(err)})`, { path: '', expected: 'a JSON object' });
  }
  return validateScenario(raw, source);
}

export function validateScenario(raw: unknown, source = 'scenario'): Scenario {
  const r: Reader = new Reader(source);
  const o = r.object('', raw, SCENARIO_FIELDS);
  const name = r.string('name', o['name'], /^[a-z0-9][a-z0-9-]{0,63}$/, 'a name of 1-64 lower-case letters, digits and "-"');
  const description = o['description'] === undefined ? '' : r.string('description', o['description'], /^[\s\S]{0,2000}$/, 'a text of at most 2,000 characters');
  const agents = r.int('agents', o['agents'], 1, 32);
  const spareAgents = r.int('spareAgents', o['spareAgents'], 0, 32, 0);
  const containersPerAgent = r.int('containersPerAgent', o['containersPerAgent'], 0, 4, 1);
  const repeat = r.int('repeat', o['repeat'], 1, 20, 1);
  const settleMs = r.int('settleMs', o['settleMs'], 1000, 600_000, 60_000);
  const sampleIntervalMs = r.int('sampleIntervalMs', o['sampleIntervalMs'], 200, 10_000, 1000);
  const pingsPerSample = r.int('pingsPerSample', o['pingsPerSample'], 0, 64, 4);
  const falseFailureGraceMs = r.int('falseFailureGraceMs', o['falseFailureGraceMs'], 0, 600_000, 15_000);
  let overlay: Record<string, unknown> | undefined;
  if (o['overlay'] !== undefined) {
    if (typeof o['overlay'] !== 'object' || o['overlay'] === null || Array.isArray(o['overlay'])) r.fail('overlay', o['overlay'], 'an overlay configuration object (see `lashup config-reference`)');
    overlay = o['overlay'] as Record<string, unknown>;
  }
  const docker: unknown = o['docker'] ?? 'auto';
  if (docker !== true && docker !== false && docker !== 'auto') r.fail('docker', docker, 'true, false or "auto" (Docker containers when dockerd and busybox-static are installed)');
  if (docker === true && containersPerAgent === 0) r.fail('docker', docker, 'false when containersPerAgent is 0');
  const agentList = agentNames(agents + spareAgents);
  const nodes = new Set<string>([...MASTERS, ...agentList]);
  const nodeList = `m1-m3${agentList.length > 0 ? `, a4-a${3 + agentList.length}` : ''}`;
  const node = (path: string, value: unknown, keyword: false | 'leader' | 'down'): string => {
    if (typeof value !== 'string' || !(nodes.has(value) || (keyword !== false && value === keyword)))
      r.fail(path, value, `a node of this scenario: ${nodeList}${keyword === false ? '' : ` or "${keyword}"`}`);
    return value;
  };
  const agent = (path: string, value: unknown): string => {
    const name = node(path, value, false);
    if (!name.startsWith('a')) r.fail(path, value, `an agent of this scenario: a4-a${3 + agentList.length}`);
    return name;
  };
  const nodeArray = (path: string, value: unknown, keyword: false | 'leader' | 'down'): string[] => {
    const list = r.array(path, value, 1, 64).map((v, i) => node(join(path, i), v, keyword));
    const seen = new Set<string>();
    list.forEach((n, i) => {
      if (seen.has(n)) r.fail(join(path, i), n, 'each node once');
      seen.add(n);
    });
    return list;
  };
  const kinds = Object.keys(STEP_FIELDS) as StepKind[];
  const parseStep = (value: unknown, i: number): Step => {
    const path = join('steps', i);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) r.fail(path, value, 'a step object with "do"');
    const kind = (value as Record<string, unknown>)['do'];
    if (typeof kind !== 'string' || !kinds.includes(kind as StepKind)) r.fail(join(path, 'do'), kind, `one of ${kinds.join(', ')}`);
    const s = r.object(path, value, ['do', ...STEP_FIELDS[kind as StepKind]]);
    switch (kind as StepKind) {
      case 'kill':
      case 'stop':
      case 'restart':
        return { do: kind as 'kill', nodes: nodeArray(join(path, 'nodes'), s['nodes'], 'leader') };
      case 'start':
        return { do: 'start', nodes: nodeArray(join(path, 'nodes'), s['nodes'], 'down') };
      case 'release':
        return { do: 'release', nodes: nodeArray(join(path, 'nodes'), s['nodes'], false).map((n, k) => agent(join(join(path, 'nodes'), k), n)) };
      case 'partition': {
        const gp = join(path, 'groups');
        const groups = r.array(gp, s['groups'], 2, 16).map((g, k) => nodeArray(join(gp, k), g, false));
        const seen = new Set<string>();
        for (const [k, g] of groups.entries())
          for (const [m, n] of g.entries()) {
            if (seen.has(n)) r.fail(join(join(gp, k), m), n, 'each node in one group only');
            seen.add(n);
          }
        const oneWay: unknown = s['oneWay'] ?? false;
        if (typeof oneWay !== 'boolean') r.fail(join(path, 'oneWay'), oneWay, 'true (only packets from the first group to the others are dropped) or false');
        return { do: 'partition', groups, oneWay };
      }
      case 'heal':
        return { do: 'heal' };
      case 'settle':
        return { do: 'settle' };
      case 'loss': {
        const bp = join(path, 'between');
        const between = r.array(bp, s['between'], 2, 2).map((n, k) => node(join(bp, k), n, false)) as [string, string];
        if (between[0] === between[1]) r.fail(join(bp, 1), between[1], 'a node other than between[0]');
        return { do: 'loss', between, percent: r.int(join(path, 'percent'), s['percent'], 0, 100) };
      }
      case 'join':
        return { do: 'join', count: r.int(join(path, 'count'), s['count'], 1, 32) };
      case 'overlay': {
        const ov = s['overlay'];
        if (typeof ov !== 'object' || ov === null || Array.isArray(ov)) r.fail(join(path, 'overlay'), ov, 'an overlay configuration object');
        const targets = s['nodes'] === undefined ? [...MASTERS, ...agentNames(agents)] : nodeArray(join(path, 'nodes'), s['nodes'], false);
        return { do: 'overlay', overlay: ov as Record<string, unknown>, nodes: targets };
      }
      case 'wait':
        return { do: 'wait', ms: r.int(join(path, 'ms'), s['ms'], 0, 600_000) };
      case 'container':
        return { do: 'container', agent: agent(join(path, 'agent'), s['agent']) };
      case 'expect': {
        const reachable: unknown = s['reachable'];
        if (typeof reachable !== 'boolean') r.fail(join(path, 'reachable'), reachable, 'true or false');
        if (containersPerAgent === 0) r.fail(join(path, 'do'), 'expect', 'containersPerAgent >= 1 (expectations ping containers)');
        const from = agent(join(path, 'from'), s['from']);
        const to = agent(join(path, 'to'), s['to']);
        if (from === to) r.fail(join(path, 'to'), to, 'an agent other than from');
        return { do: 'expect', from, to, reachable };
      }
    }
  };
  const steps = r.array('steps', o['steps'], 1, 500).map((v, i) => parseStep(v, i));
  const joins = steps.reduce((n, s) => n + (s.do === 'join' ? s.count : 0), 0) * repeat;
  if (joins > spareAgents) r.fail('spareAgents', spareAgents, `at least ${joins} (the join steps start that many agents over ${repeat} repetitions)`);
  return {
    name,
    description,
    agents,
    spareAgents,
    containersPerAgent,
    repeat,
    settleMs,
    sampleIntervalMs,
    pingsPerSample,
    falseFailureGraceMs,
    ...(overlay === undefined ? {} : { overlay }),
    docker: docker as boolean | 'auto',
    steps,
  };
}
