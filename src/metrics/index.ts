export { METRIC_CATALOG, type ComponentSpec, type FieldSpec, type KeyedSpec, type MetricKind, type NestedSpec, type Spec } from './catalog.js';
export { renderExposition, type Exposition } from './exposition.js';
export { DaemonMetrics } from './registry.js';
