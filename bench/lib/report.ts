/** Prints a benchmark result as a table and writes it as JSON with the machine's description. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release, platform, arch } from 'node:os';
import { dirname, join } from 'node:path';
import type { BenchResult, Cell } from './types.js';

export function machineInfo(): Record<string, unknown> {
  const cpuList = cpus();
  return {
    cpuModel: cpuList[0]?.model ?? 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: platform(),
    arch: arch(),
    kernel: release(),
    node: process.version,
  };
}

function formatCell(cell: Cell): string {
  if (cell === null) return '-';
  if (typeof cell === 'number') return Number.isInteger(cell) ? cell.toLocaleString('en-US') : String(cell);
  return String(cell);
}

export function renderTable(rows: readonly Record<string, Cell>[]): string {
  if (rows.length === 0) return '(no rows)';
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const body = rows.map((row) => columns.map((c) => formatCell(row[c] ?? null)));
  const widths = columns.map((c, i) => Math.max(c.length, ...body.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padStart(widths[i] as number)).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export function report(name: string, description: string, result: BenchResult, resultsDir: string): string {
  const lines = [`== ${name}: ${description}`, renderTable(result.rows)];
  if (result.targets !== undefined && result.targets.length > 0) {
    lines.push('', 'targets:');
    for (const t of result.targets) lines.push(`  [${t.met ? 'met' : 'MISSED'}] ${t.name}: target ${t.target}, measured ${t.measured}`);
  }
  for (const note of result.notes ?? []) lines.push(`note: ${note}`);
  const file = join(resultsDir, `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  const json = {
    name,
    description,
    date: new Date().toISOString(),
    machine: machineInfo(),
    parameters: result.parameters,
    rows: result.rows,
    targets: result.targets ?? [],
    notes: result.notes ?? [],
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  lines.push(`results written to ${file}`);
  return lines.join('\n');
}
