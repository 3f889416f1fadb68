/**
 * The firewall lashup wants on an agent, derived from the overlay configuration (pure). Today it
 * is the masquerade of overlay-sourced traffic leaving the overlay; isolation between networks
 * and VIP load balancing will add chains to the same tables.
 *
 * lashup owns whole tables (`ip lashup`, `ip6 lashup`) and touches nothing outside them. Each
 * table is replaced in one `nft -f` transaction (create-if-missing, delete, recreate), so there is
 * never a moment without the rules and never a second copy of them.
 */
import type { OverlayConfig } from '../ipam/index.js';

/** The name of the nftables tables lashup owns, in the `ip` and `ip6` families. */
export const FIREWALL_TABLE = 'lashup';

export type FirewallFamily = 'ip' | 'ip6';

export const FIREWALL_FAMILIES: readonly FirewallFamily[] = ['ip', 'ip6'];

/** One owned table: its family and its body (what goes between `table <family> lashup {` and `}`). */
export interface FirewallTable {
  family: FirewallFamily;
  body: string[];
}

/** The desired tables; a family without a table has its table removed. */
export interface FirewallRuleset {
  tables: FirewallTable[];
}

export interface FirewallOptions {
  /** Masquerade overlay-sourced traffic leaving the overlay (config `dataplane.masquerade`). */
  masquerade: boolean;
}

/** The ruleset for `overlay`. */
export function firewallRuleset(overlay: OverlayConfig, options: FirewallOptions): FirewallRuleset {
  if (!options.masquerade) return { tables: [] };
  const nets = overlay.networks.filter((n) => n.enabled !== false);
  const tables: FirewallTable[] = [];
  for (const [family, sources, vtep] of [
    ['ip', nets.flatMap((n) => (n.subnet === undefined ? [] : [n.subnet])), overlay.vtepSubnet],
    ['ip6', nets.flatMap((n) => (n.subnet6 === undefined ? [] : [n.subnet6])), overlay.vtepSubnet6],
  ] as const) {
    const body = ['chain postrouting {', '  type nat hook postrouting priority srcnat; policy accept;'];
    if (sources.length > 0) {
      const inside = [...sources, ...(vtep === undefined ? [] : [vtep])];
      body.push(`  ${family} saddr { ${sources.join(', ')} } ${family} daddr != { ${inside.join(', ')} } counter masquerade`);
    }
    body.push('}');
    tables.push({ family, body });
  }
  return { tables };
}

/** The `nft -f` script that makes lashup's tables exactly `ruleset` (absent families removed). */
export function applyScript(ruleset: FirewallRuleset): string {
  const lines: string[] = [];
  for (const family of FIREWALL_FAMILIES) {
    lines.push(`table ${family} ${FIREWALL_TABLE} {}`, `delete table ${family} ${FIREWALL_TABLE}`);
    const table = ruleset.tables.find((t) => t.family === family);
    if (table !== undefined) lines.push(`table ${family} ${FIREWALL_TABLE} {`, ...table.body.map((l) => `  ${l}`), '}');
  }
  return `${lines.join('\n')}\n`;
}

/** The script that removes lashup's tables (on leave). */
export function removeScript(): string {
  return applyScript({ tables: [] });
}
