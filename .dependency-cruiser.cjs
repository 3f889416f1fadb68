/**
 * Layering rules checked in CI (`npm run lint`), on src/ and bench/. Why each rule exists:
 *  - no-circular: a cycle makes start order and mocking depend on import order; two existed
 *    (crdt/map-store <-> crdt/registry, daemon/api <-> daemon/daemon) before this check.
 *  - no-deep-import: each src/ folder has one public surface, its index.ts; reaching past it
 *    couples callers to internals (tests of a module may still import its internals).
 *  - pure-core-no-io: the protocol cores take time and randomness as inputs and do no I/O, so
 *    they run on the simulator's virtual clock; a node:* import there is the first step away.
 *  - no-testing-in-production: test doubles (src/testing) stay out of production code.
 */
const PURE_CORES = '^src/(common|crdt|ipam|keyspace|kv|membership|raft|routes|sim|vxlan)/|^src/firewall/(ruleset|syncer)\\.ts$|^src/dataplane/(desired|plan|reconciler|view|types|errors)\\.ts$';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles are not allowed.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-deep-import',
      severity: 'error',
      comment: 'Import another src/ folder through its index.ts only.',
      from: { path: '^src/([^/]+)/', pathNot: '^src/testing/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'no-deep-import-from-bench',
      severity: 'error',
      comment: 'Benchmarks import src/ folders through their index.ts only.',
      from: { path: '^bench/' },
      to: { path: '^src/[^/]+/', pathNot: '^src/[^/]+/index\\.ts$' },
    },
    {
      name: 'pure-core-no-io',
      severity: 'error',
      comment: 'Pure protocol cores import no node:* module.',
      from: { path: PURE_CORES },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'no-testing-in-production',
      severity: 'error',
      comment: 'src/testing holds test doubles; production code does not import them.',
      from: { path: '^src/', pathNot: '^src/testing/' },
      to: { path: '^src/testing/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
