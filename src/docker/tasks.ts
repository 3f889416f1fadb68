/**
 * Task names of Docker containers (pure): a container on one of lashup's Docker networks names
 * its task with two labels,
 *
 *   docker run --network dcos --label lashup.task=web --label lashup.framework=shop ...
 *
 * and its addresses on lashup's networks become the task's records. A named container may back
 * VIPs (src/vips) with a third label, comma-separated:
 *
 *   --label lashup.vips=/web:80:8080,1.2.3.4:5000/udp
 *
 * A bad VIP is refused and reported; the task and its other VIPs stay. Both labels or neither;
 * a value must be 1-63 letters, digits, ".", "_" or "-" (the CNI path's rule). A container
 * whose labels are not valid is left out and reported (it never hides the others).
 */
import { MAX_TASK_VIPS } from '../keyspace/index.js';
import { parseVipDeclaration, VipError } from '../vips/index.js';
import type { DockerContainer } from './engine.js';

export const TASK_LABEL = 'lashup.task';
export const FRAMEWORK_LABEL = 'lashup.framework';
export const VIPS_LABEL = 'lashup.vips';

/** The CNI path's TASK_NAME rule (kept here too: the Docker module does not depend on the CNI one). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface DockerTask {
  framework: string;
  task: string;
  ips: string[];
  /** The container, for operators. */
  containerId: string;
  /** VIP declarations of its `lashup.vips` label that parse (the daemon checks them against the cluster's ranges). */
  vips?: string[];
}

export interface DockerTaskRefusal {
  containerId: string;
  label: string;
  value: string | undefined;
  message: string;
}

/** The tasks of the containers attached to `networks` (lashup's Docker networks), and the containers refused. */
export function dockerTasks(containers: readonly DockerContainer[], networks: ReadonlySet<string>): { tasks: DockerTask[]; refused: DockerTaskRefusal[] } {
  const tasks: DockerTask[] = [];
  const refused: DockerTaskRefusal[] = [];
  for (const c of containers) {
    const ips: string[] = [];
    for (const [name, endpoint] of Object.entries(c.Networks)) {
      if (!networks.has(name)) continue;
      if (typeof endpoint?.IPAddress === 'string' && endpoint.IPAddress !== '') ips.push(endpoint.IPAddress);
      if (typeof endpoint?.GlobalIPv6Address === 'string' && endpoint.GlobalIPv6Address !== '') ips.push(endpoint.GlobalIPv6Address);
    }
    if (ips.length === 0) continue;
    const id = c.Id.slice(0, 12);
    const task = c.Labels[TASK_LABEL];
    const framework = c.Labels[FRAMEWORK_LABEL];
    const bad = [
      [TASK_LABEL, task],
      [FRAMEWORK_LABEL, framework],
    ].find(([, v]) => v === undefined || !NAME.test(v));
    if (bad !== undefined) {
      const [label, value] = bad as [string, string | undefined];
      refused.push({
        containerId: id,
        label,
        value,
        message:
          value === undefined
            ? `container ${id} has label ${label === TASK_LABEL ? TASK_LABEL : FRAMEWORK_LABEL} missing; give both ${TASK_LABEL} and ${FRAMEWORK_LABEL}, or neither`
            : `container ${id}: label ${label} = ${JSON.stringify(value.slice(0, 80))} is not valid; expected 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      });
      continue;
    }
    const vips: string[] = [];
    const declared = (c.Labels[VIPS_LABEL] ?? '')
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v.length > 0);
    for (const v of declared.slice(0, MAX_TASK_VIPS)) {
      try {
        parseVipDeclaration(v);
        vips.push(v);
      } catch (err) {
        if (!(err instanceof VipError)) throw err;
        refused.push({ containerId: id, label: VIPS_LABEL, value: v, message: `container ${id}: label ${VIPS_LABEL}: ${err.message}` });
      }
    }
    if (declared.length > MAX_TASK_VIPS)
      refused.push({
        containerId: id,
        label: VIPS_LABEL,
        value: declared.slice(MAX_TASK_VIPS).join(','),
        message: `container ${id}: label ${VIPS_LABEL} declares ${declared.length} VIPs; at most ${MAX_TASK_VIPS} are taken`,
      });
    tasks.push({ framework: framework as string, task: task as string, ips: ips.sort(), containerId: id, ...(vips.length === 0 ? {} : { vips }) });
  }
  tasks.sort((a, b) => (`${a.framework}/${a.task}/${a.containerId}` < `${b.framework}/${b.task}/${b.containerId}` ? -1 : 1));
  return { tasks, refused };
}
