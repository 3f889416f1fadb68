export {
  ALLOCATIONS_KEY,
  OVERLAY_CONFIG_KEY,
  OVERLAY_CONFIG_FIELD,
  OVERLAY_KEY_PREFIX,
  overlayKey,
  CNI_USAGE_PREFIX,
  cniUsageKey,
  DOCKER_USAGE_PREFIX,
  dockerUsageKey,
  TASKS_KEY,
  VIP_ADDRESSES_KEY,
} from './keys.js';
export { writeIfChanged } from './write.js';
export { announceAllocation, withdrawAllocation, checkAnnouncement } from './allocations.js';
export type { AnnouncementTrust, CheckedAnnouncement } from './allocations.js';
export { decodeOverlayConfig, publishOverlayConfig, OverlayConfigView } from './overlay-config.js';
export type { OverlayConfigViewOptions, OverlayConfigViewStats } from './overlay-config.js';
export { publishOverlayEntry, removeAgentEntries, publishCniUsage, readCniUsage, publishDockerUsage, readDockerUsage } from './entries.js';
export type { CniUsage } from './entries.js';
export { canonicalJson, signRow, rowSignature, rowSignatureProblem, unsignedPart, writeSignedIfChanged, ROW_SIGNATURE_FIELD } from './signed-rows.js';
export type { RowSigner, RowVerifier, RowSignature } from './signed-rows.js';
export { OwnedRowsAdmission } from './row-admission.js';
export type { RowOwnership, OwnedRowsStats } from './row-admission.js';
export { publishTasks, readTasks, readAgentTasks, removeAgentTasks } from './tasks.js';
export type { PublishedTask, AgentTasks, TaskSource } from './tasks.js';
export { MAX_TASK_VIPS } from './tasks.js';
export { publishVipAddresses, readVipAddresses } from './vip-addresses.js';
