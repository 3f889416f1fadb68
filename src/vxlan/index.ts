export { VxlanError, VxlanErrorCode } from './errors.js';
export { bridgeNames, validateNetworkName, validateVtepName, MAX_NETWORK_NAME } from './names.js';
export type { BridgeNames } from './names.js';
export { vtepMac, bridgeMac, parseOui, DEFAULT_VTEP_OUI } from './mac.js';
export { localState, remoteState, DEFAULT_VTEP_CONFIG } from './spec.js';
export type { VtepConfig, LocalAgent, LocalNetwork, RemoteAgent } from './spec.js';
