/**
 * The `lashup lab` commands: `run FILE` plays a scenario and writes report.json and report.html
 * (exit 0 when every invariant held, 1 otherwise); `validate FILE` only checks the file.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isLashupError } from '../common/index.js';
import { LabErrorCode } from './errors.js';
import { renderHtml } from './html.js';
import { reportJson, summaryText } from './report.js';
import { runScenario } from './runner.js';
import { parseScenario, type Scenario } from './scenario.js';

/** Exit codes, as the rest of the CLI uses them. */
export const LAB_EXIT = { ok: 0, violations: 1, usage: 2, invalid: 4 } as const;

export interface LabRunOptions {
  /** A scenario file, or a scenario built here (`lab convergence`). */
  file: string | Scenario;
  /** Where report.json and report.html go (created); default ./lab-<scenario>-<time>. */
  outDir?: string;
  command: string[];
  out(text: string): void;
  err(text: string): void;
}

function load(file: string, err: (t: string) => void): Scenario | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    err(`lashup: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}\n`);
    return undefined;
  }
  try {
    return parseScenario(text, file);
  } catch (e) {
    if (isLashupError(e)) {
      err(`lashup: ${e.message} (${e.code})\n`);
      return undefined;
    }
    throw e;
  }
}

export function validateLab(file: string, out: (t: string) => void, err: (t: string) => void): number {
  const scenario = load(file, err);
  if (scenario === undefined) return LAB_EXIT.invalid;
  out(`${file}: valid scenario "${scenario.name}": 3 masters, ${scenario.agents} agents, ${scenario.steps.length} steps x ${scenario.repeat}\n`);
  return LAB_EXIT.ok;
}

export async function runLab(options: LabRunOptions): Promise<number> {
  const scenario = typeof options.file === 'string' ? load(options.file, options.err) : options.file;
  if (scenario === undefined) return LAB_EXIT.invalid;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = resolve(options.outDir ?? `lab-${scenario.name}-${stamp}`);
  mkdirSync(dir, { recursive: true });
  try {
    const report = await runScenario(scenario, { command: options.command, out: options.out });
    writeFileSync(join(dir, 'report.json'), `${JSON.stringify(reportJson(report), null, 2)}\n`);
    writeFileSync(join(dir, 'report.html'), renderHtml(report));
    options.out(summaryText(report));
    options.out(`report: ${join(dir, 'report.html')} (and report.json)\n`);
    return report.ok ? LAB_EXIT.ok : LAB_EXIT.violations;
  } catch (e) {
    if (isLashupError(e, LabErrorCode.Unsupported)) {
      options.err(`lashup: ${e.message} (${e.code})\n`);
      return LAB_EXIT.usage;
    }
    throw e;
  }
}
