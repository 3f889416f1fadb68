export { vipRuleset, vipChainName, parseVipCounters, VIP_TABLE } from './ruleset.js';
export type { VipBackend, VipService, VipCounter, VipRuleset } from './ruleset.js';
