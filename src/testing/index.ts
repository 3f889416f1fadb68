/**
 * Test doubles for the production surfaces: kept out of the modules' `index.ts` so that
 * production code cannot reach them by accident.
 */
export { FakeNft } from '../firewall/fake.js';
export { SimOverlayCluster, type SimClusterNode, type SimOverlayClusterOptions } from './overlay-cluster.js';
