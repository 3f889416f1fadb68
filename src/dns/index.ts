export { TaskCatalog, parseTaskName, inZone, dnsLabel } from './catalog.js';
export type { TaskRecord, NameKind, VipRecord } from './catalog.js';
export { DnsServer } from './server.js';
export type { DnsServerOptions, DnsServerStats } from './server.js';
export { plainQuestionKey } from './question-key.js';
