/**
 * The firewall lashup wants on an agent, derived from the overlay configuration alone (pure):
 * the isolation between overlay networks, and the masquerade of overlay-sourced traffic leaving
 * the overlay. VIP load balancing will add chains to the same tables.
 *
 * lashup owns whole tables (`ip lashup`, `ip6 lashup`) and touches nothing outside them. Each
 * table is replaced in one `nft -f` transaction (create-if-missing, delete, recreate), so there is
 * never a moment without the rules and never a second copy of them. Connection tracking is
 * global, not per table: connections established before a replace stay established after it.
 *
 * Chains and their order (per family):
 *   forward      filter hook, priority filter (0): replies of established connections pass;
 *                a new connection to a network's containers passes from the same network, from
 *                the networks in its `allowFrom`, and from hosts (anything outside the overlay
 *                networks: agents' VTEP and underlay addresses) when `allowHosts`; anything else
 *                is dropped and counted per (from, to). A container's new connection out of the
 *                overlay is dropped unless its network has `allowOutbound`. VIP DNAT (prerouting,
 *                -100) runs before it, so isolation judges the real backend address.
 *   output       filter hook, priority filter: the agent's own new connections to a network's
 *                local containers, dropped when the network does not `allowHosts`.
 *   postrouting  nat hook, priority srcnat (100): the masquerade, after filtering, on the
 *                original addresses.
 * The rules are per network pair, not per container or agent: their number grows with the
 * square of the networks only.
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

/**
 * A named nftables counter of dropped new connections, with what it counts: `from` is a network,
 * or `hosts` (anything outside the overlay networks); `to` is a network, or `outside`.
 */
export interface DropCounter {
  name: string;
  from: string;
  to: string;
}

/** The desired tables; a family without a table has its table removed. */
export interface FirewallRuleset {
  tables: FirewallTable[];
  /** Every drop counter the tables define (one name in both families). */
  counters: DropCounter[];
}

export interface FirewallOptions {
  /** Masquerade overlay-sourced traffic leaving the overlay (config `dataplane.masquerade`). */
  masquerade: boolean;
}

/** The policy of one network, defaults applied. */
export interface NetworkPolicy {
  name: string;
  allowFrom: string[];
  allowHosts: boolean;
  allowOutbound: boolean;
}

/** Every enabled network's policy (defaults: isolated from other networks, hosts and outbound allowed). */
export function networkPolicies(overlay: OverlayConfig): NetworkPolicy[] {
  return overlay.networks
    .filter((n) => n.enabled !== false)
    .map((n) => ({ name: n.name, allowFrom: [...(n.allowFrom ?? [])], allowHosts: n.allowHosts !== false, allowOutbound: n.allowOutbound !== false }));
}

/** The ruleset for `overlay`. */
export function firewallRuleset(overlay: OverlayConfig, options: FirewallOptions): FirewallRuleset {
  const nets = overlay.networks.filter((n) => n.enabled !== false);
  const policies = networkPolicies(overlay);
  const index = new Map(nets.map((n, i) => [n.name, i]));
  const counters: DropCounter[] = [];
  const counter = (from: string, to: string, name: string): string => {
    if (!counters.some((c) => c.name === name)) counters.push({ name, from, to });
    return name;
  };
  // Counter names from network positions: network names may hold characters nft names do not.
  const pairName = (from: string, to: string): string => counter(from, to, `drop_${index.get(from)}_${index.get(to)}`);
  const hostsName = (to: string): string => counter('hosts', to, `drop_hosts_${index.get(to)}`);
  const outsideName = (from: string): string => counter(from, 'outside', `drop_${index.get(from)}_outside`);
  const tables: FirewallTable[] = [];
  for (const [family, field, vtep] of [
    ['ip', 'subnet', overlay.vtepSubnet],
    ['ip6', 'subnet6', overlay.vtepSubnet6],
  ] as const) {
    const cidrOf = new Map(nets.flatMap((n) => (n[field] === undefined ? [] : [[n.name, n[field] as string] as const])));
    const sources = [...cidrOf.values()];
    const inside = [...sources, ...(vtep === undefined ? [] : [vtep])];
    const body: string[] = [];
    const decls: string[] = [];
    if (sources.length > 0) {
      const forward = ['chain forward {', '  type filter hook forward priority filter; policy accept;', '  ct state established,related accept'];
      const output = ['chain output {', '  type filter hook output priority filter; policy accept;', '  ct state established,related accept'];
      for (const p of policies) {
        const to = cidrOf.get(p.name);
        if (to === undefined) continue;
        forward.push(`  ${family} daddr ${to} ${family} saddr ${to} accept`);
        for (const [from, cidr] of cidrOf) {
          if (from === p.name) continue;
          if (p.allowFrom.includes(from)) forward.push(`  ${family} daddr ${to} ${family} saddr ${cidr} accept`);
          else forward.push(`  ${family} daddr ${to} ${family} saddr ${cidr} counter name ${pairName(from, p.name)} drop`);
        }
        if (!p.allowHosts) {
          forward.push(`  ${family} daddr ${to} counter name ${hostsName(p.name)} drop`);
          output.push(`  ${family} daddr ${to} counter name ${hostsName(p.name)} drop`);
        }
      }
      for (const p of policies) {
        const from = cidrOf.get(p.name);
        if (from === undefined || p.allowOutbound) continue;
        forward.push(`  ${family} saddr ${from} ${family} daddr != { ${inside.join(', ')} } counter name ${outsideName(p.name)} drop`);
      }
      forward.push('}');
      output.push('}');
      body.push(...forward, ...output);
      if (options.masquerade) {
        body.push('chain postrouting {', '  type nat hook postrouting priority srcnat; policy accept;');
        body.push(`  ${family} saddr { ${sources.join(', ')} } ${family} daddr != { ${inside.join(', ')} } counter masquerade`);
        body.push('}');
      }
    }
    // Named counters are declared before the rules that use them.
    for (const c of counters) if (body.some((l) => l.includes(`counter name ${c.name} `))) decls.push(`counter ${c.name} {}`);
    if (body.length > 0) tables.push({ family, body: [...decls, ...body] });
  }
  return { tables, counters };
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
  return applyScript({ tables: [], counters: [] });
}
