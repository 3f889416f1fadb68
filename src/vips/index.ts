export { vipRuleset, vipChainName, parseVipCounters, VIP_TABLE } from './ruleset.js';
export type { VipBackend, VipService, VipCounter, VipRuleset } from './ruleset.js';
export { parseVipDeclaration } from './declaration.js';
export type { VipDeclaration } from './declaration.js';
export { VipError, VipErrorCode } from './errors.js';
