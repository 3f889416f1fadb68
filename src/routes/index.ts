export { RoutesError, RoutesErrorCode } from './errors.js';
export { OVERLAY_KEY_PREFIX, overlayKey, parseOverlayEntry } from './entry.js';
export type { OverlayEntry } from './entry.js';
export { localDesired, remoteDesired, agentGroup } from './derive.js';
export type { LocalInput, RemoteResult } from './derive.js';
export { untrustedReason } from './trust.js';
export type { EntryAuthority } from './trust.js';
