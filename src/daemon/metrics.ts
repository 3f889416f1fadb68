/**
 * Prometheus text exposition of the components' counters. Each component keeps a plain stats
 * object; numbers become `lashup_<component>_<field>` (snake case), nested records of numbers
 * become one series per key with a `key` label (operations by kind, problems by error code).
 */
const snake = (s: string): string =>
  s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();

const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** Renders `{ component: stats }` in the Prometheus text format (version 0.0.4). */
export function renderMetrics(components: Record<string, object | undefined>): string {
  const out: string[] = [];
  const emit = (name: string, labels: Record<string, string>, value: number): void => {
    const l = Object.entries(labels);
    out.push(`${name}${l.length === 0 ? '' : `{${l.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`} ${Number.isFinite(value) ? value : 0}`);
  };
  const walk = (prefix: string, value: unknown, labels: Record<string, string>, depth: number): void => {
    if (typeof value === 'number') emit(prefix, labels, value);
    else if (typeof value === 'boolean') emit(prefix, labels, value ? 1 : 0);
    else if (value !== null && typeof value === 'object' && depth < 3) {
      const entries = Object.entries(value as Record<string, unknown>);
      // A record of numbers (or of records) keyed by data, not by field name, gets a label.
      const keyed = entries.length > 0 && entries.every(([k]) => /[^A-Za-z0-9]/.test(k) || /^[A-Z_]+$/.test(k) || k.includes('.'));
      for (const [k, v] of entries) {
        if (keyed) walk(prefix, v, { ...labels, ['key' in labels ? 'subkey' : 'key']: k }, depth + 1);
        else walk(`${prefix}_${snake(k)}`, v, labels, depth + 1);
      }
    }
  };
  for (const [component, stats] of Object.entries(components)) {
    if (stats === undefined) continue;
    walk(`lashup_${snake(component)}`, stats, {}, 0);
  }
  return `${out.join('\n')}\n`;
}
