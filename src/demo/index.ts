export { NetnsCluster, CNI_PLUGIN_DIR } from './cluster.js';
export type { ClusterNode, Container, NetnsClusterOptions, CniOutcome } from './cluster.js';
export { TestNet, run, must, eventually, reapStale } from './netns.js';
export type { TestHost, TestNetOptions, ExecResult } from './netns.js';
export { runDemo } from './demo.js';
export { runLocalDemo } from './local.js';
export { neighbourEntriesFor, reserveNeighbourCapacity } from './neighbour-capacity.js';
export { Dockerd, DOCKERD, BUSYBOX, busyboxImageTarball, unmountUnder } from './dockerd.js';
export type { DockerRun } from './dockerd.js';
