/**
 * The task name a runtime gives a container through CNI (pure), for the DNS names of src/dns:
 *
 *   network configuration `args.lashup`: { "task": "web", "framework": "shop" }
 *   CNI_ARGS pairs:                     LASHUP_TASK=web;LASHUP_FRAMEWORK=shop
 *
 * VIPs the task backs (src/vips) come the same ways, and only with a name (a named VIP belongs
 * to the task's framework):
 *
 *   `args.lashup.vips`: ["/web:80:8080", "1.2.3.4:5000/udp"]
 *   CNI_ARGS:           LASHUP_VIPS=/web:80:8080,1.2.3.4:5000/udp
 *
 * `args` wins when both are given (it is the structured channel of CNI 1.0; CNI_ARGS is the
 * older one that every runtime still passes through). Both parts or neither: a task without a
 * framework has no name under the scheme `<task>.<framework>.containerip.<zone>`, and guessing a
 * framework would publish a name nobody asked for.
 */

import { MAX_TASK_VIPS } from '../keyspace/index.js';
import { parseVipDeclaration, VipError, VipErrorCode } from '../vips/index.js';

/** A task or framework name: a DNS label's characters plus "." and "_" (they become "-" in names). */
export const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface TaskName {
  task: string;
  framework: string;
  /** VIP declarations, each checked for syntax (the daemon checks them against the cluster's ranges). */
  vips?: string[];
}

/** A name given but not valid: where it was given, the value, and what is valid. */
export class TaskNameError extends Error {
  constructor(
    readonly where: string,
    readonly value: unknown,
    message: string,
    /** The stable code: LASHUP_ERR_CNI_TASK_NAME, or the VIP module's code for a bad VIP. */
    readonly code = 'LASHUP_ERR_CNI_TASK_NAME',
  ) {
    super(message);
  }
}

/** Each declaration checked for syntax; the first bad one throws, naming where it was given. */
function vipList(where: string, list: unknown, named: TaskName | undefined): string[] | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list) || list.length > MAX_TASK_VIPS || !list.every((v) => typeof v === 'string' && v.length > 0 && v.length <= 200))
    throw new TaskNameError(where, list, `${where} = ${show(list)} is not valid; expected up to ${MAX_TASK_VIPS} VIP declarations like "/web:80" or "1.2.3.4:5000/udp"`, VipErrorCode.Invalid);
  if (named === undefined)
    throw new TaskNameError(where, list, `${where} is given without a task name; a VIP belongs to a task (give LASHUP_TASK and LASHUP_FRAMEWORK, or args.lashup.task and .framework)`);
  for (const v of list as string[]) {
    try {
      parseVipDeclaration(v);
    } catch (err) {
      if (err instanceof VipError) throw new TaskNameError(where, v, `${where}: ${err.message}`, err.code);
      throw err;
    }
  }
  return list.length === 0 ? undefined : (list as string[]);
}

const withVips = (named: TaskName | undefined, vips: string[] | undefined): TaskName | undefined => (named === undefined || vips === undefined ? named : { ...named, vips });

const show = (v: unknown): string => (v === undefined ? '(missing)' : (JSON.stringify(v)?.slice(0, 80) ?? String(v)));

function checked(where: string, value: unknown): string {
  if (typeof value !== 'string' || !TASK_NAME.test(value))
    throw new TaskNameError(where, value, `${where} = ${show(value)} is not valid; expected 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  return value;
}

/** Both parts or neither; `names` are how the two parts are called where they were given. */
function pair(names: [string, string], task: unknown, framework: unknown): TaskName | undefined {
  if (task === undefined && framework === undefined) return undefined;
  if (task === undefined || framework === undefined) {
    const [given, missing] = task === undefined ? [names[1], names[0]] : [names[0], names[1]];
    throw new TaskNameError(missing, undefined, `${given} is given but ${missing} is not; give both (names are <task>.<framework>.containerip.<zone>) or neither`);
  }
  return { task: checked(names[0], task), framework: checked(names[1], framework) };
}

/** The task name from the network configuration's `args.lashup` or CNI_ARGS; undefined when none is given. */
export function taskNameFromCni(config: Record<string, unknown>, cniArgs: string | undefined): TaskName | undefined {
  const args = config['args'];
  const lashup = args !== null && typeof args === 'object' ? (args as Record<string, unknown>)['lashup'] : undefined;
  if (lashup !== undefined) {
    if (lashup === null || typeof lashup !== 'object' || Array.isArray(lashup))
      throw new TaskNameError('args.lashup', lashup, `args.lashup = ${show(lashup)} is not valid; expected { "task": ..., "framework": ... }`);
    const l = lashup as Record<string, unknown>;
    const named = pair(['args.lashup.task', 'args.lashup.framework'], l['task'], l['framework']);
    const vips = vipList('args.lashup.vips', l['vips'], named);
    if (named !== undefined) return withVips(named, vips);
  }
  let task: string | undefined;
  let framework: string | undefined;
  let vips: string | undefined;
  for (const item of (cniArgs ?? '').split(';')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === 'LASHUP_TASK') task = value;
    else if (key === 'LASHUP_FRAMEWORK') framework = value;
    else if (key === 'LASHUP_VIPS') vips = value;
  }
  const named = pair(['CNI_ARGS LASHUP_TASK', 'CNI_ARGS LASHUP_FRAMEWORK'], task, framework);
  const list =
    vips === undefined
      ? undefined
      : vips
          .split(',')
          .map((v) => v.trim())
          .filter((v) => v.length > 0);
  return withVips(named, vipList('CNI_ARGS LASHUP_VIPS', list, named));
}
