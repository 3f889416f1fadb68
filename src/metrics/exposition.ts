/**
 * The Prometheus text exposition (format 0.0.4) of the components' stats objects, described by
 * the catalog: one `# HELP` and `# TYPE` per family, counters ending in `_total`, milliseconds
 * exported as seconds, records keyed by data as labelled series.
 */
import { METRIC_CATALOG, type ComponentSpec, type FieldSpec, type KeyedSpec, type Spec } from './catalog.js';

const snake = (s: string): string =>
  s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();

const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

export interface Exposition {
  text: string;
  /** `component.field` of stats fields the catalog does not describe (not exported). */
  undocumented: string[];
}

function familyName(prefix: string, field: string, spec: FieldSpec | KeyedSpec): string {
  let base = spec.name ?? snake(field);
  if ('ms' in spec && spec.ms === true) base = base.replace(/_ms$/, '_seconds');
  const name = base === '' ? prefix : `${prefix}_${base}`;
  return spec.kind === 'counter' && !name.endsWith('_total') ? `${name}_total` : name;
}

const sampleValue = (v: unknown, ms: boolean): number | undefined => {
  const n = typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'number' ? v : undefined;
  if (n === undefined || !Number.isFinite(n)) return undefined;
  return ms ? n / 1000 : n;
};

/** Renders `{ component: stats }`; components absent from the catalog are all undocumented. */
export function renderExposition(components: Record<string, object | undefined>, catalog: Record<string, ComponentSpec> = METRIC_CATALOG): Exposition {
  const lines: string[] = [];
  const undocumented: string[] = [];
  const family = (name: string, spec: FieldSpec | KeyedSpec): void => {
    lines.push(`# HELP ${name} ${escapeHelp(spec.help)}`, `# TYPE ${name} ${spec.kind}`);
  };
  const walk = (prefix: string, path: string, stats: Record<string, unknown>, specs: ComponentSpec): void => {
    for (const [field, value] of Object.entries(stats)) {
      const spec: Spec | undefined = Object.hasOwn(specs, field) ? specs[field] : undefined;
      if (value === undefined || typeof value === 'function') continue;
      if (spec === undefined) {
        undocumented.push(`${path}.${field}`);
        continue;
      }
      if ('nested' in spec) {
        if (value !== null && typeof value === 'object') walk(`${prefix}_${snake(field)}`, `${path}.${field}`, value as Record<string, unknown>, spec.nested);
        continue;
      }
      const name = familyName(prefix, field, spec);
      family(name, spec);
      if ('keyed' in spec) {
        for (const [key, inner] of Object.entries((value ?? {}) as Record<string, unknown>)) {
          if (spec.inner !== undefined && inner !== null && typeof inner === 'object') {
            for (const [k2, v2] of Object.entries(inner as Record<string, unknown>)) {
              const n = sampleValue(v2, false);
              if (n !== undefined) lines.push(`${name}{${spec.keyed}="${escapeLabel(key)}",${spec.inner}="${escapeLabel(k2)}"} ${n}`);
            }
          } else {
            const n = sampleValue(inner, false);
            if (n !== undefined) lines.push(`${name}{${spec.keyed}="${escapeLabel(key)}"} ${n}`);
          }
        }
        continue;
      }
      const n = sampleValue(value, spec.ms === true);
      if (n !== undefined) lines.push(`${name} ${n}`);
    }
  };
  for (const [component, stats] of Object.entries(components)) {
    if (stats === undefined) continue;
    walk(`lashup_${snake(component)}`, component, stats as Record<string, unknown>, catalog[component] ?? {});
  }
  return { text: lines.length === 0 ? '' : `${lines.join('\n')}\n`, undocumented };
}
