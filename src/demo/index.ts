export { NetnsCluster } from './cluster.js';
export type { ClusterNode, Container, NetnsClusterOptions } from './cluster.js';
export { TestNet, run, must, eventually, reapStale } from './netns.js';
export type { TestHost, TestNetOptions, ExecResult } from './netns.js';
export { runDemo } from './demo.js';
export { runLocalDemo } from './local.js';
