/**
 * `lashup lab convergence --agents N --repeat K`: the standard route-convergence benchmark as a
 * scenario, so it runs, checks and reports like any other. Each repetition: a new agent joins
 * (spare r), a container starts under a name on a4, an agent is SIGKILLed and started again, and
 * the agent that joined is released, so the cluster has the same shape at the start of every
 * repetition. a4 is never killed: it holds the container whose name is timed.
 */
import { validateScenario, type Scenario } from './scenario.js';

export function convergenceScenario(agents: number, repeat: number): Scenario {
  if (!Number.isInteger(agents) || agents < 2 || agents > 32) throw new RangeError(`agents = ${agents}; expected an integer from 2 to 32`);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) throw new RangeError(`repeat = ${repeat}; expected an integer from 1 to 20`);
  const steps: unknown[] = [];
  for (let r = 0; r < repeat; r++) {
    const joined = `a${4 + agents + r}`;
    const victim = `a${5 + (r % (agents - 1))}`;
    steps.push(
      { do: 'join', count: 1 },
      { do: 'settle' },
      { do: 'container', agent: 'a4' },
      { do: 'settle' },
      { do: 'kill', nodes: [victim] },
      { do: 'settle' },
      { do: 'start', nodes: [victim] },
      { do: 'settle' },
      { do: 'release', nodes: [joined] },
      { do: 'settle' },
    );
  }
  return validateScenario(
    {
      name: `convergence-${agents}`,
      description: `The standard route-convergence benchmark on 3 masters and ${agents} agents, ${repeat} times: a new agent joins, a container starts under a name, an agent is SIGKILLed (and started again), the new agent is released.`,
      agents,
      spareAgents: repeat,
      settleMs: 120_000,
      steps,
    },
    'lab convergence',
  );
}
