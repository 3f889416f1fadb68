/**
 * Test doubles for the production surfaces: kept out of the modules' `index.ts` so that
 * production code cannot reach them by accident.
 */
export { FakeNft } from '../firewall/fake.js';
export { FakeVipNft } from '../vips/fake.js';
export { SimOverlayCluster, type SimClusterNode, type SimOverlayClusterOptions } from './overlay-cluster.js';
// Simulated clusters of each protocol core, and in-memory storage that can crash.
export { SwimCluster, type SwimClusterOptions, type AddNodeOptions, type ClusterListener } from './swim-cluster.js';
export { KvCluster, type KvClusterOptions } from './kv-cluster.js';
export { IpamCluster, type IpamClusterOptions } from './ipam-cluster.js';
export { runScenario, SCENARIO_OVERLAY, type ScenarioOptions, type ScenarioResult } from './ipam-scenario.js';
export { MemoryFs } from './memory-fs.js';
export { MemoryRaftStorage } from './memory-raft-storage.js';
