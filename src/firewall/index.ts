export { firewallRuleset, networkPolicies, applyScript, removeScript, FIREWALL_TABLE, FIREWALL_FAMILIES } from './ruleset.js';
export type { FirewallRuleset, FirewallTable, FirewallFamily, FirewallOptions, DropCounter, NetworkPolicy } from './ruleset.js';
export { NftCli, normalizeListing, countersInListing } from './backend.js';
export type { FirewallBackend, FirewallReading, NftCliOptions } from './backend.js';
export { NftShell } from './shell.js';
export type { NftShellOptions } from './shell.js';
export { FirewallSyncer } from './syncer.js';
export type { FirewallSyncerOptions, FirewallSyncerStats } from './syncer.js';
export { FirewallError, FirewallErrorCode } from './errors.js';
