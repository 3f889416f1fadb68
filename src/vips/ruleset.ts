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

/** One VIP as rules: its map element, its chain's rule, and its backends' chains by name. */
interface RenderedVip {
  element: string;
  rule: string;
  /** Backend chain name -> its one rule. A chain's name says its backend, so equal names mean equal rules. */
  backends: Map<string, string>;
}

/** One family's table as rendered: what decides its shape (hairpin subnets) and its VIPs by chain name. */
interface RenderedFamily {
  hairpin: string[];
  vips: Map<string, RenderedVip>;
}

export interface VipRuleset {
  /** The nft script: each table deleted (when present) and made again, in one transaction. */
  script: string;
  counters: VipCounter[];
  /** What the script makes, per family, for `vipUpdateScript`. */
  families: Record<'ip' | 'ip6', RenderedFamily>;
}

const isV6 = (ip: string): boolean => ip.includes(':');
const sanitize = (ip: string): string => ip.replace(/[^0-9A-Fa-f]/g, '_');

/** A chain name for the VIP: letters, digits and `_` only (nft identifiers). */
export function vipChainName(s: Pick<VipService, 'address' | 'port' | 'protocol'>): string {
  return `vip_${s.protocol}_${s.port}_${sanitize(s.address)}`;
}

/**
 * A backend's chain: named from the VIP and the backend (`x` and `p` are not hex digits, so no
 * two VIPs or backends give one name). Named from the backend, not its position: an update that
 * adds or removes another backend leaves this chain, and its counter, as they are.
 */
export function vipBackendChainName(vipChain: string, backend: VipBackend): string {
  return `${vipChain}_x${sanitize(backend.ip)}p${backend.port}`;
}

const endpoint = (ip: string, port: number): string => (isV6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`);

function renderVip(s: VipService, six: boolean, counters: VipCounter[], family: 'ip' | 'ip6'): RenderedVip {
  const chain = vipChainName(s);
  const seen = new Set<string>();
  const backends = s.backends.filter((b) => {
    const key = endpoint(b.ip, b.port);
    if (isV6(b.ip) !== six || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const element = `${s.address} . ${s.protocol} . ${s.port} : goto ${chain}`;
  if (backends.length === 0) return { element, rule: 'counter reject', backends: new Map() };
  const names = backends.map((b) => vipBackendChainName(chain, b));
  const out = new Map<string, string>();
  backends.forEach((b, i) => {
    const name = names[i] as string;
    counters.push({ family, chain: name, vip: endpoint(s.address, s.port), backend: endpoint(b.ip, b.port) });
    out.set(name, `meta l4proto ${s.protocol} counter dnat to ${endpoint(b.ip, b.port)}`);
  });
  return { element, rule: `numgen random mod ${backends.length} vmap { ${names.map((n, i) => `${i} : goto ${n}`).join(', ')} }`, backends: out };
}

/**
 * The ruleset for `services`; `hairpinSubnets` are the agent's local container subnets (one per
 * bridge) where client and backend can meet without the agent routing between them. A backend of the other family than its VIP cannot be reached
 * through DNAT and is left out (the caller validates declarations; this never emits a rule nft
 * would refuse). Duplicate VIPs (same address, protocol and port): the first wins; a backend
 * listed twice counts once.
 */
export function vipRuleset(services: readonly VipService[], options: { hairpinSubnets?: readonly string[] } = {}): VipRuleset {
  const counters: VipCounter[] = [];
  const lines: string[] = [];
  const families = {} as Record<'ip' | 'ip6', RenderedFamily>;
  for (const family of ['ip', 'ip6'] as const) {
    const six = family === 'ip6';
    const hairpin = (options.hairpinSubnets ?? []).filter((c) => isV6(c) === six);
    const vips = new Map<string, RenderedVip>();
    for (const s of services) {
      const chain = vipChainName(s);
      if (isV6(s.address) !== six || vips.has(chain)) continue;
      vips.set(chain, renderVip(s, six, counters, family));
    }
    families[family] = { hairpin, vips };
    lines.push(`table ${family} ${VIP_TABLE}`, `delete table ${family} ${VIP_TABLE}`);
    if (vips.size === 0) continue;
    const addr = six ? 'ipv6_addr' : 'ipv4_addr';
    const daddr = six ? 'ip6 daddr' : 'ip daddr';
    const saddr = six ? 'ip6 saddr' : 'ip saddr';
    const body: string[] = [
      '  map services {',
      `    type ${addr} . inet_proto . inet_service : verdict`,
      `    elements = { ${[...vips.values()].map((v) => v.element).join(', ')} }`,
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
    for (const [chain, v] of vips) {
      body.push(`  chain ${chain} {`, `    ${v.rule}`, '  }');
      for (const [name, rule] of v.backends) body.push(`  chain ${name} {`, `    ${rule}`, '  }');
    }
    body.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
    for (const subnet of hairpin) body.push(`    ct status dnat ${saddr} ${subnet} ${daddr} ${subnet} masquerade`);
    body.push('  }');
    lines.push(`table ${family} ${VIP_TABLE} {`, ...body, '}');
  }
  return { script: `${lines.join('\n')}\n`, counters, families };
}

/**
 * The transaction that takes the kernel from `prev` (applied) to `next`, touching only the VIPs
 * that changed: their map element, their chain and the backend chains that came or went; every
 * other VIP's chains and counters stay as they are. `''` when nothing changed; undefined when
 * a table's shape changed (a family gains its first VIP or loses its last, or the hairpin
 * subnets changed): then `next.script` replaces the tables whole.
 *
 * Order inside the transaction: new chains first (a rule may jump only to a chain that exists),
 * then each changed VIP's chain flushed and given its new rule, then the map elements, then
 * the chains nothing jumps to any more deleted.
 */
export function vipUpdateScript(prev: VipRuleset, next: VipRuleset): string | undefined {
  const adds: string[] = [];
  const rules: string[] = [];
  const elements: string[] = [];
  const deletes: string[] = [];
  for (const family of ['ip', 'ip6'] as const) {
    const a = prev.families[family];
    const b = next.families[family];
    if ((a.vips.size === 0) !== (b.vips.size === 0) || a.hairpin.join(',') !== b.hairpin.join(',')) return undefined;
    const t = `${family} ${VIP_TABLE}`;
    const key = (element: string): string => element.slice(0, element.indexOf(' : goto '));
    for (const [chain, v] of b.vips) {
      const old = a.vips.get(chain);
      if (old !== undefined && old.rule === v.rule) continue;
      if (old === undefined) adds.push(`add chain ${t} ${chain}`);
      for (const [name, rule] of v.backends) if (!old?.backends.has(name)) adds.push(`add chain ${t} ${name}`, `add rule ${t} ${name} ${rule}`);
      rules.push(`flush chain ${t} ${chain}`, `add rule ${t} ${chain} ${v.rule}`);
      if (old === undefined) elements.push(`add element ${t} services { ${v.element} }`);
      for (const name of old?.backends.keys() ?? []) if (!v.backends.has(name)) deletes.push(`delete chain ${t} ${name}`);
    }
    for (const [chain, old] of a.vips) {
      if (b.vips.has(chain)) continue;
      elements.push(`delete element ${t} services { ${key(old.element)} }`);
      rules.push(`flush chain ${t} ${chain}`);
      deletes.push(`delete chain ${t} ${chain}`, ...[...old.backends.keys()].map((name) => `delete chain ${t} ${name}`));
    }
  }
  const all = [...adds, ...rules, ...elements, ...deletes];
  return all.length === 0 ? '' : `${all.join('\n')}\n`;
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
