export { CniCode, CniError, CniErrorCode } from './errors.js';
export { ContainerPool, attachmentKey } from './pool.js';
export type { Attachment, NetworkRange } from './pool.js';
export { CniService } from './service.js';
export type { CniServiceOptions, CniStats } from './service.js';
export { runPlugin, SUPPORTED_VERSIONS, DEFAULT_SOCKET_PATH } from './plugin.js';
export type { Ask, PluginOutput } from './plugin.js';
export { conflist, writeConflist } from './conflist.js';
export { askSocket } from './ask.js';
