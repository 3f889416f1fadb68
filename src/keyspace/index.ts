export { OVERLAY_CONFIG_KEY, OVERLAY_CONFIG_FIELD, OVERLAY_KEY_PREFIX, overlayKey, CNI_USAGE_PREFIX, cniUsageKey } from './keys.js';
export { writeIfChanged } from './write.js';
export { decodeOverlayConfig, publishOverlayConfig, OverlayConfigView } from './overlay-config.js';
export type { OverlayConfigViewOptions, OverlayConfigViewStats } from './overlay-config.js';
export { publishOverlayEntry, removeAgentEntries, publishCniUsage, readCniUsage } from './entries.js';
export type { CniUsage } from './entries.js';
