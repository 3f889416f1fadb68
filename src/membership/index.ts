export { Membership } from './swim.js';
export type {
  MembershipOptions,
  MembershipEvent,
  MemberEventType,
  MemberInfo,
  MemberStateName,
  MembershipStats,
} from './swim.js';
export { membershipConfig, validateMembershipConfig, MEMBERSHIP_PROFILES, MIN_PACKET_BYTES } from './config.js';
export type { MembershipConfig, MembershipProfile } from './config.js';
export { MembershipError, MembershipErrorCode } from './errors.js';
export { MemberRegistry } from './registry.js';
export type { SeedSet } from './registry.js';
export { encodeMeta, decodeMeta, checkMeta, META_FORMAT_VERSION } from './meta.js';
export type { MemberMeta, MemberRaft, MemberRaftRole, MemberRole } from './meta.js';
export {
  decodePacket,
  encodeMessage,
  buildPacket,
  MessageType,
  PROTOCOL_VERSION,
  MAX_META_BYTES,
  MAX_NAME_LENGTH,
  MAX_ADDRESS_LENGTH,
} from './codec.js';
export type { SwimMessage } from './codec.js';
export { SYNC_PROTOCOL, PING_PROTOCOL, encodeSync, decodeSync, SyncMessageType } from './sync.js';
export type { SyncMessage, SyncRecord } from './sync.js';
export { BroadcastQueue, retransmitLimit } from './broadcast.js';
export { Suspicion, suspicionMinMs, refusedSuspicionMinMs, suspicionTimeoutMs, expectedConfirmations } from './suspicion.js';
export { Awareness } from './awareness.js';
export { MemberState } from './table.js';
