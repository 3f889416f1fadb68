export { IpamState, encodeCommand, decodeCommand, encodeResult, decodeResult, leaseBlocks } from './state.js';
export type { Lease, NetworkLease, NetworkUsage, IpamCommand, IpamResult, VipAddress, VipAssignment } from './state.js';
export { validateOverlayConfig, validateNetworkName, DEFAULT_OVERLAY_CONFIG, DEFAULT_VIP_SUBNET, DEFAULT_VIP_SUBNET6, MAX_NETWORK_NAME_LENGTH } from './config.js';
export type { OverlayConfig, OverlayNetworkConfig, OverlaySpec, NetworkSpec } from './config.js';
export { IpamError, IpamErrorCode } from './errors.js';
export { AllocatorMaster, encodeLeaseRequest, RAFT_PROTOCOL, IPAM_PROTOCOL } from './master.js';
export type { AllocatorMasterOptions, AllocatorStats } from './master.js';
export { isLeaseNews, LeaseClient } from './lease-client.js';
export type { LeaseClientOptions, LeaseStore, MasterInfo, LeaseClientStats } from './lease-client.js';
