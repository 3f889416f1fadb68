export { DockerEngine, DOCKER_API_VERSION } from './engine.js';
export type { DockerApi, DockerNetwork, DockerNetworkSpec, DockerEngineOptions, DockerContainer, DockerEvent, DockerEventStream } from './engine.js';
export { desiredDockerNetworks, dockerNetworkSpec, dockerNetworkDifferences, isLashupNetwork, LASHUP_NETWORK_LABEL } from './desired.js';
export type { DesiredDockerNetwork } from './desired.js';
export { DockerNetworkKeeper, dockerHalfCapacity } from './keeper.js';
export type { DockerConflict, DockerKeeperStats, DockerKeeperOptions, DockerUsage } from './keeper.js';
export { DockerError, DockerErrorCode } from './errors.js';
export { dockerTasks, TASK_LABEL, FRAMEWORK_LABEL, VIPS_LABEL } from './tasks.js';
export type { DockerTask, DockerTaskRefusal } from './tasks.js';
