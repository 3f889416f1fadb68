/**
 * The reconciler's diff: from the desired state and the kernel view to the operations that make
 * the kernel match, touching only what lashup owns.
 *
 * Ownership (the one rule every function here keeps):
 * - links whose alias is the owner tag (lashup sets it when it creates or adopts a link);
 * - addresses on those links (IPv6 link-local addresses excepted: the kernel manages them);
 * - routes whose protocol is lashup's number, in any table;
 * - permanent neighbour and FDB entries on an owned VXLAN link;
 * - rules whose protocol is lashup's number.
 * Nothing else is ever changed or deleted. A foreign object sitting where a desired one should
 * go is a conflict: reported, left alone, retried when it changes.
 *
 * Pure: no I/O.
 */
import type { NormAddress, NormEntry, NormFdb, NormLink, NormNeighbour, NormRoute, NormRule } from './desired.js';
import type { KernelView } from './view.js';
import type { KernelFdb, KernelLink, KernelOp } from './types.js';

export interface Ownership {
  /** Route and rule protocol number that marks lashup's entries. */
  readonly routeProtocol: number;
  /** Alias lashup writes on the links it owns. */
  readonly ownerAlias: string;
}

export interface Conflict {
  /** Desired key or link name. */
  readonly key: string;
  readonly reason: string;
}

export interface LinkPlan {
  /** Deletions of stale or incompatible owned links, then creations. */
  readonly structural: KernelOp[];
  /** In-place changes: MTU, MAC, up, learning, adoption (alias). */
  readonly updates: KernelOp[];
  readonly conflicts: Conflict[];
  /** Desired links that exist, are compatible and can carry addresses and entries. */
  readonly usable: Set<string>;
  /** ifindexes of owned VXLAN links (their permanent neighbour and FDB entries are lashup's). */
  readonly ownedVxlan: Set<number>;
}

function immutableDiffers(link: KernelLink, desired: NormLink): string | undefined {
  if (link.kind !== desired.kind) return `kind ${link.kind || 'none'} instead of ${desired.kind}`;
  if (desired.vxlan === undefined) return undefined;
  const v = link.vxlan;
  if (v === undefined) return 'no VXLAN attributes';
  if (v.vni !== desired.vxlan.vni) return `VNI ${v.vni} instead of ${desired.vxlan.vni}`;
  if (v.port !== desired.vxlan.port) return `port ${v.port} instead of ${desired.vxlan.port}`;
  if (v.localIp !== desired.vxlan.localIp) return `local ${v.localIp} instead of ${desired.vxlan.localIp}`;
  return undefined;
}

export function planLinks(desired: ReadonlyMap<string, NormLink>, view: KernelView, own: Ownership): LinkPlan {
  const deletes: KernelOp[] = [];
  const creates: KernelOp[] = [];
  const updates: KernelOp[] = [];
  const conflicts: Conflict[] = [];
  const usable = new Set<string>();
  const ownedVxlan = new Set<number>();
  for (const link of view.linksByIndex.values()) {
    if (link.alias !== own.ownerAlias) continue;
    if (link.kind === 'vxlan') ownedVxlan.add(link.ifindex);
    // A link lashup made for a network or VTEP name no longer configured.
    if (!desired.has(link.name)) deletes.push({ op: 'link.delete', ifindex: link.ifindex });
  }
  for (const d of desired.values()) {
    const k = view.linksByName.get(d.name);
    if (k === undefined) {
      creates.push({
        op: 'link.create',
        link: { name: d.name, kind: d.kind, mtu: d.mtu, alias: own.ownerAlias, ...(d.mac === undefined ? {} : { mac: d.mac }), ...(d.vxlan === undefined ? {} : { vxlan: d.vxlan }) },
      });
      continue;
    }
    const owned = k.alias === own.ownerAlias;
    const differs = immutableDiffers(k, d);
    if (differs !== undefined) {
      if (owned) {
        // Only what cannot change in place forces a new device; a restart never does.
        deletes.push({ op: 'link.delete', ifindex: k.ifindex });
        creates.push({
          op: 'link.create',
          link: { name: d.name, kind: d.kind, mtu: d.mtu, alias: own.ownerAlias, ...(d.mac === undefined ? {} : { mac: d.mac }), ...(d.vxlan === undefined ? {} : { vxlan: d.vxlan }) },
        });
      } else {
        conflicts.push({ key: d.name, reason: `link ${d.name} exists, is not lashup's (alias ${JSON.stringify(k.alias ?? '')}) and differs: ${differs}` });
      }
      continue;
    }
    usable.add(d.name);
    if (d.kind === 'vxlan') ownedVxlan.add(k.ifindex);
    const set: Extract<KernelOp, { op: 'link.set' }> = { op: 'link.set', ifindex: k.ifindex };
    let changed = false;
    if (k.mtu !== d.mtu) {
      set.mtu = d.mtu;
      changed = true;
    }
    if (d.mac !== undefined && k.mac !== d.mac) {
      set.mac = d.mac;
      changed = true;
    }
    if (d.vxlan !== undefined && k.vxlan !== undefined && k.vxlan.learning !== d.vxlan.learning) {
      set.learning = d.vxlan.learning;
      changed = true;
    }
    if (!owned) {
      // A compatible device left by an earlier install (or DC/OS) is adopted, not recreated.
      set.alias = own.ownerAlias;
      changed = true;
    }
    if (!k.up) {
      set.up = true;
      changed = true;
    }
    if (changed) updates.push(set);
  }
  return { structural: [...deletes, ...creates], updates, conflicts, usable, ownedVxlan };
}

function isLinkLocal6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

export interface AddressPlan {
  readonly ops: KernelOp[];
  /** Desired addresses whose link is not there (yet). */
  readonly waiting: number;
}

export function planAddresses(desired: ReadonlyMap<string, NormAddress>, desiredLinks: ReadonlyMap<string, NormLink>, links: LinkPlan, view: KernelView): AddressPlan {
  const adds: KernelOp[] = [];
  const deletes: KernelOp[] = [];
  let waiting = 0;
  const wanted = new Map<number, Set<string>>();
  for (const a of desired.values()) {
    const link = view.linksByName.get(a.dev);
    if (link === undefined || !links.usable.has(a.dev)) {
      waiting++;
      continue;
    }
    let set = wanted.get(link.ifindex);
    if (set === undefined) {
      set = new Set();
      wanted.set(link.ifindex, set);
    }
    set.add(`${a.address}/${a.prefixLen}`);
    if (!view.addressesOf(link.ifindex).has(`${a.address}/${a.prefixLen}`)) {
      adds.push({ op: 'addr.add', addr: { ifindex: link.ifindex, family: a.family, address: a.address, prefixLen: a.prefixLen } });
    }
  }
  for (const name of links.usable) {
    if (!desiredLinks.has(name)) continue;
    const link = view.linksByName.get(name) as KernelLink;
    const keep = wanted.get(link.ifindex);
    for (const [id, addr] of view.addressesOf(link.ifindex)) {
      if (keep?.has(id) === true || (addr.family === 6 && isLinkLocal6(addr.address))) continue;
      deletes.push({ op: 'addr.delete', addr });
    }
  }
  // Delete first: an address moving to a new prefix length must leave before it comes back.
  return { ops: [...deletes, ...adds], waiting };
}

export type EntryOutcome = 'ok' | 'ops' | 'waiting' | 'conflict' | 'invalid';

export interface EntryPlan {
  outcome: EntryOutcome;
  /** Replacements and additions. */
  replaces: KernelOp[];
  /** Removals; sent after every replacement of the same apply (make before break). */
  deletes: KernelOp[];
  reason?: string;
}

const OK: EntryPlan = { outcome: 'ok', replaces: [], deletes: [] };

/**
 * What to do for one key: `desired` is the entry lashup wants there (undefined: none). The
 * kernel side comes from the view.
 */
export function planEntry(key: string, desired: NormEntry | undefined, desiredLinks: ReadonlyMap<string, NormLink>, links: LinkPlan, view: KernelView, own: Ownership): EntryPlan {
  const kind = key.charAt(0);
  if (desired !== undefined && desired.kind !== 'rule') {
    if (!desiredLinks.has(desired.dev)) return { outcome: 'invalid', replaces: [], deletes: [], reason: `device ${desired.dev} is not a link lashup manages` };
    if (!links.usable.has(desired.dev)) return { outcome: 'waiting', replaces: [], deletes: [] };
  }
  switch (kind) {
    case 'r':
      return planRoute(key, desired as NormRoute | undefined, view, own);
    case 'n':
      return planNeighbour(key, desired as NormNeighbour | undefined, links, view);
    case 'f':
      return planFdb(key, desired as NormFdb | undefined, links, view);
    default:
      return planRule(key, desired as NormRule | undefined, view, own);
  }
}

function planRoute(key: string, d: NormRoute | undefined, view: KernelView, own: Ownership): EntryPlan {
  const k = view.routes.get(key);
  if (d === undefined) {
    if (k === undefined || k.protocol !== own.routeProtocol) return OK;
    return { outcome: 'ops', replaces: [], deletes: [{ op: 'route.delete', route: k }] };
  }
  if (k !== undefined && k.protocol !== own.routeProtocol) {
    return { outcome: 'conflict', replaces: [], deletes: [], reason: `route ${d.dst}/${d.prefixLen} in table ${d.table} exists with protocol ${k.protocol}, not lashup's ${own.routeProtocol}` };
  }
  const ifindex = view.linksByName.get(d.dev)?.ifindex as number;
  if (k?.unicast && k.gateway === d.gateway && k.ifindex === ifindex && k.onlink === d.onlink) return OK;
  return {
    outcome: 'ops',
    replaces: [
      {
        op: 'route.replace',
        route: { family: d.family, table: d.table, dst: d.dst, prefixLen: d.prefixLen, gateway: d.gateway, ifindex, protocol: own.routeProtocol, onlink: d.onlink, metric: d.metric, unicast: true },
      },
    ],
    deletes: [],
  };
}

function planNeighbour(key: string, d: NormNeighbour | undefined, links: LinkPlan, view: KernelView): EntryPlan {
  const k = view.neighbours.get(key);
  if (d === undefined) {
    if (k === undefined || !k.permanent || !links.ownedVxlan.has(k.ifindex)) return OK;
    return { outcome: 'ops', replaces: [], deletes: [{ op: 'neigh.delete', neigh: k }] };
  }
  if (k?.permanent && k.mac === d.mac) return OK;
  // A non-permanent entry at this address is the kernel's cache (a failed ARP, say): replacing it is what `ip neigh replace` does.
  const ifindex = view.linksByName.get(d.dev)?.ifindex as number;
  return { outcome: 'ops', replaces: [{ op: 'neigh.replace', neigh: { ifindex, family: d.family, ip: d.ip, mac: d.mac, permanent: true } }], deletes: [] };
}

function planFdb(key: string, d: NormFdb | undefined, links: LinkPlan, view: KernelView): EntryPlan {
  const list: KernelFdb[] = view.fdb.get(key) ?? [];
  const ours = list.filter((f) => f.permanent && links.ownedVxlan.has(f.ifindex));
  if (d === undefined) {
    if (ours.length === 0) return OK;
    return { outcome: 'ops', replaces: [], deletes: ours.map((fdb) => ({ op: 'fdb.delete', fdb })) };
  }
  const present = ours.some((f) => f.dst === d.dst);
  // Replace rewrites the entry's first remote (vxlan_fdb_update), so a moved agent costs one
  // operation; remotes beyond the first are deleted before it, so the order cannot matter.
  const extra = present ? ours.filter((f) => f.dst !== d.dst) : ours.slice(1);
  if (present && extra.length === 0) return OK;
  const ifindex = view.linksByName.get(d.dev)?.ifindex as number;
  const replaces: KernelOp[] = extra.map((fdb) => ({ op: 'fdb.delete', fdb }));
  if (!present) replaces.push({ op: 'fdb.replace', fdb: { ifindex, mac: d.mac, dst: d.dst, permanent: true } });
  return { outcome: 'ops', replaces, deletes: [] };
}

function planRule(key: string, d: NormRule | undefined, view: KernelView, own: Ownership): EntryPlan {
  const k = view.rules.get(key);
  if (d === undefined) {
    if (k === undefined || k.protocol !== own.routeProtocol) return OK;
    return { outcome: 'ops', replaces: [], deletes: [{ op: 'rule.delete', rule: k }] };
  }
  // An identical rule, whoever made it, already does the job; the kernel would refuse a twin.
  if (k !== undefined) return OK;
  return {
    outcome: 'ops',
    replaces: [
      { op: 'rule.add', rule: { family: d.family, priority: d.priority, table: d.table, src: d.src, srcLen: d.srcLen, dst: d.dst, dstLen: d.dstLen, fwmark: d.fwmark, protocol: own.routeProtocol } },
    ],
    deletes: [],
  };
}
