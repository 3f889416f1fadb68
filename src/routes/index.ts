export { RoutesError, RoutesErrorCode } from './errors.js';
export { leaseEntry, OVERLAY_KEY_PREFIX, overlayKey, parseOverlayEntry } from './entry.js';
export type { OverlayEntry } from './entry.js';
export { localDesired, remoteDesired, agentGroup, RemoteStateCache } from './derive.js';
export type { LocalInput, RemoteResult } from './derive.js';
export { TrustCache, untrustedReason } from './trust.js';
export type { EntryAuthority } from './trust.js';
