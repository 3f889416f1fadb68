/**
 * Task records: each agent's tasks (name, framework, container addresses) as one signed row of
 * the `tasks` key, under the agent's name, so that every node's DNS server can answer for every
 * task, a released agent's row goes with its release, and no other member can write it (the
 * row is owned like the agent's other rows: keyspace/row-admission.ts).
 */
import type { KvStore } from '../kv/index.js';
import { TASKS_KEY } from './keys.js';
import { type RowSigner, unsignedPart, writeSignedIfChanged } from './signed-rows.js';
import { writeIfChanged } from './write.js';

/** Where an agent learnt a task: its HTTP API (orchestrators), the CNI path, or Docker labels. */
export type TaskSource = 'api' | 'cni' | 'docker';
const SOURCES: readonly string[] = ['api', 'cni', 'docker'];

export interface PublishedTask {
  framework: string;
  task: string;
  /** Container addresses. */
  ips: string[];
  /** Where the agent learnt it; rows written before sources existed read as `api`. */
  source: TaskSource;
  /**
   * The VIPs the task backs, as declared (`/<name>:<port>...`, `<ip>:<port>...`; see
   * src/vips/declaration.ts). Absent when it declares none. Readers validate each one again.
   */
  vips?: string[];
}

/** At most this many VIP declarations per task (a row stays small whatever a runtime sends). */
export const MAX_TASK_VIPS = 16;

/** One agent's row: its underlay address and its tasks. */
export interface AgentTasks {
  agentIp: string;
  tasks: PublishedTask[];
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 253;

/** Writes this agent's tasks (only when they changed; signed when a signer is given). */
export function publishTasks(kv: KvStore, agent: string, row: AgentTasks, signer?: RowSigner): boolean {
  const value = {
    agentIp: row.agentIp,
    tasks: row.tasks.map((t) => ({ framework: t.framework, task: t.task, ips: [...t.ips], source: t.source, ...(t.vips === undefined || t.vips.length === 0 ? {} : { vips: [...t.vips] }) })),
  };
  if (signer !== undefined) return writeSignedIfChanged(kv, signer, TASKS_KEY, agent, value);
  return writeIfChanged(kv, TASKS_KEY, agent, value);
}

/** One agent's published row, when well formed (malformed tasks are left out). */
export function readAgentTasks(raw: unknown): AgentTasks | undefined {
  const row = unsignedPart(raw);
  if (row === undefined || !isText(row['agentIp']) || !Array.isArray(row['tasks'])) return undefined;
  const tasks: PublishedTask[] = [];
  for (const t of row['tasks'] as unknown[]) {
    const r = t as Partial<PublishedTask> | null;
    if (r === null || typeof r !== 'object' || !isText(r.framework) || !isText(r.task) || !Array.isArray(r.ips) || !r.ips.every(isText)) continue;
    const vips = Array.isArray(r.vips) ? r.vips.filter(isText).slice(0, MAX_TASK_VIPS) : [];
    tasks.push({
      framework: r.framework,
      task: r.task,
      ips: [...r.ips],
      source: typeof r.source === 'string' && SOURCES.includes(r.source) ? r.source : 'api',
      ...(vips.length === 0 ? {} : { vips }),
    });
  }
  return { agentIp: row['agentIp'] as string, tasks };
}

/** Every agent's tasks, by agent name. */
export function readTasks(kv: KvStore): Map<string, AgentTasks> {
  const out = new Map<string, AgentTasks>();
  for (const [agent, raw] of Object.entries(kv.get(TASKS_KEY) ?? {})) {
    const row = readAgentTasks(raw);
    if (row !== undefined) out.set(agent, row);
  }
  return out;
}

/** Removes a released agent's row (run by the master that released it). */
export function removeAgentTasks(kv: KvStore, agent: string): boolean {
  if (kv.get(TASKS_KEY)?.[agent] === undefined) return false;
  kv.update(TASKS_KEY, (m) => m.remove(agent));
  return true;
}
