export { IpamState, encodeCommand, decodeCommand, encodeResult, decodeResult } from './state.js';
export type { Lease, NetworkLease, NetworkUsage, IpamCommand, IpamResult } from './state.js';
export { validateOverlayConfig, validateNetworkName, DEFAULT_OVERLAY_CONFIG, MAX_NETWORK_NAME_LENGTH } from './config.js';
export type { OverlayConfig, OverlayNetworkConfig, OverlaySpec, NetworkSpec } from './config.js';
export { IpamError, IpamErrorCode } from './errors.js';
export { IpamCluster } from './sim-cluster.js';
export type { IpamClusterOptions } from './sim-cluster.js';
export { runScenario, SCENARIO_OVERLAY } from './scenario.js';
export type { ScenarioOptions, ScenarioResult } from './scenario.js';
