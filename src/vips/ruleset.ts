/**
 * The nftables rules that make VIPs work on an agent (pure: builds the script, applies nothing).
 * A building block of issue 21 (VIPs); not wired into the daemon yet.
 *
 * One table per family (`ip lashup_vips`, `ip6 lashup_vips`):
 *
 *   map services     (VIP address . protocol . port) -> goto the VIP's chain
 *   prerouting       nat, dstnat: connections from containers and other hosts
 *   output           nat, -100: connections the agent itself opens
 *   postrouting      nat, srcnat: hairpin — a connection through a VIP whose client and backend
 *                    sit in the same local container subnet (one bridge) is masqueraded: the
 *                    backend would otherwise answer the client straight over the bridge (or
 *                    itself, when it backs the VIP it called), skipping the agent's conntrack,
 *                    and the client would drop a reply from an address it never called
 *   vip_<id>         `numgen random mod N vmap` over the backends' chains; no backend: reject
 *   vip_<id>_x<i>    `counter dnat to backend` (`x`: not a hex digit, so no VIP's name can
 *                    collide with another's backend chain): the counter is the backend's new connections
 *                    (nat chains see only a connection's first packet)
 *
 * Per-VIP chains named from the VIP itself (not its position) so that a later incremental
 * update can replace one VIP's chains and map element without touching the others. Only new
 * connections are balanced; established ones keep their backend through conntrack, so removing
 * a backend does not disturb connections to the others.
 */

export interface VipBackend {
  ip: string;
  port: number;
}

export interface VipService {
  /** The VIP's address (IPv4 or IPv6). */
  address: string;
  port: number;
  protocol: 'tcp' | 'udp';
  backends: readonly VipBackend[];
}

export const VIP_TABLE = 'lashup_vips';

/** A backend's counter: which VIP and backend a `vip_*` chain's counter belongs to. */
export interface VipCounter {
  family: 'ip' | 'ip6';
  chain: string;
  vip: string;
  backend: string;
}

export interface VipRuleset {
  /** The nft script: each table deleted (when present) and made again, in one transaction. */
  script: string;
  counters: VipCounter[];
}

const isV6 = (ip: string): boolean => ip.includes(':');

/** A chain name for the VIP: letters, digits and `_` only (nft identifiers). */
export function vipChainName(s: Pick<VipService, 'address' | 'port' | 'protocol'>): string {
  return `vip_${s.protocol}_${s.port}_${s.address.replace(/[^0-9A-Fa-f]/g, '_')}`;
}

const endpoint = (ip: string, port: number): string => (isV6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`);

/**
 * The ruleset for `services`; `hairpinSubnets` are the agent's local container subnets (one per
 * bridge) where client and backend can meet without the agent routing between them. A backend of the other family than its VIP cannot be reached
 * through DNAT and is left out (the caller validates declarations; this never emits a rule nft
 * would refuse). Duplicate VIPs (same address, protocol and port): the first wins.
 */
export function vipRuleset(services: readonly VipService[], options: { hairpinSubnets?: readonly string[] } = {}): VipRuleset {
  const counters: VipCounter[] = [];
  const lines: string[] = [];
  for (const family of ['ip', 'ip6'] as const) {
    const six = family === 'ip6';
    const seen = new Set<string>();
    const mine = services.filter((s) => {
      const key = vipChainName(s);
      if (isV6(s.address) !== six || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    lines.push(`table ${family} ${VIP_TABLE}`, `delete table ${family} ${VIP_TABLE}`);
    if (mine.length === 0) continue;
    const addr = six ? 'ipv6_addr' : 'ipv4_addr';
    const daddr = six ? 'ip6 daddr' : 'ip daddr';
    const saddr = six ? 'ip6 saddr' : 'ip saddr';
    const body: string[] = [
      '  map services {',
      `    type ${addr} . inet_proto . inet_service : verdict`,
      `    elements = { ${mine.map((s) => `${s.address} . ${s.protocol} . ${s.port} : goto ${vipChainName(s)}`).join(', ')} }`,
      '  }',
      '  chain prerouting {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      `    ${daddr} . meta l4proto . th dport vmap @services`,
      '  }',
      '  chain output {',
      '    type nat hook output priority -100; policy accept;',
      `    ${daddr} . meta l4proto . th dport vmap @services`,
      '  }',
    ];
    for (const s of mine) {
      const chain = vipChainName(s);
      const backends = s.backends.filter((b) => isV6(b.ip) === six);
      if (backends.length === 0) {
        body.push(`  chain ${chain} {`, `    counter reject`, '  }');
        continue;
      }
      body.push(`  chain ${chain} {`, `    numgen random mod ${backends.length} vmap { ${backends.map((_, i) => `${i} : goto ${chain}_x${i}`).join(', ')} }`, '  }');
      backends.forEach((b, i) => {
        counters.push({ family, chain: `${chain}_x${i}`, vip: endpoint(s.address, s.port), backend: endpoint(b.ip, b.port) });
        body.push(`  chain ${chain}_x${i} {`, `    meta l4proto ${s.protocol} counter dnat to ${endpoint(b.ip, b.port)}`, '  }');
      });
    }
    body.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
    for (const subnet of (options.hairpinSubnets ?? []).filter((c) => isV6(c) === six)) body.push(`    ct status dnat ${saddr} ${subnet} ${daddr} ${subnet} masquerade`);
    body.push('  }');
    lines.push(`table ${family} ${VIP_TABLE} {`, ...body, '}');
  }
  return { script: `${lines.join('\n')}\n`, counters };
}

/** New connections per backend from `nft list table` output of the VIP tables (by counter chain). */
export function parseVipCounters(listing: string): Record<string, number> {
  const out: Record<string, number> = {};
  let chain: string | undefined;
  for (const line of listing.split('\n')) {
    const head = /^\s*chain (vip_\S+) \{/.exec(line);
    if (head !== null) chain = head[1];
    const packets = /counter packets (\d+)/.exec(line);
    if (chain !== undefined && packets !== null && /dnat (ip6? )?to /.test(line)) out[chain] = Number(packets[1]);
  }
  return out;
}
