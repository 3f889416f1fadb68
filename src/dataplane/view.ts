/**
 * The reconciler's picture of the kernel: what the last listing showed, kept current by the
 * outcome of every operation and by change notifications. Entries are keyed the way desired
 * entries are (`desired.ts`), by device name, so a desired entry finds its kernel counterpart
 * with one map lookup.
 *
 * Pure: no I/O.
 */
import { neighbourKey, fdbKey, routeKey, ruleKey } from './desired.js';
import type { KernelAddress, KernelEvent, KernelFdb, KernelLink, KernelNeighbour, KernelOp, KernelRoute, KernelRule, KernelSnapshot } from './types.js';

export class KernelView {
  readonly linksByName = new Map<string, KernelLink>();
  readonly linksByIndex = new Map<number, KernelLink>();
  /** ifindex -> "address/prefixLen" -> address. */
  readonly addresses = new Map<number, Map<string, KernelAddress>>();
  readonly routes = new Map<string, KernelRoute>();
  readonly neighbours = new Map<string, KernelNeighbour>();
  /** A VXLAN FDB entry may hold several remotes for one MAC; each is listed separately. */
  readonly fdb = new Map<string, KernelFdb[]>();
  readonly rules = new Map<string, KernelRule>();

  /** Replaces the whole view with a fresh listing. */
  load(snapshot: KernelSnapshot): void {
    this.linksByName.clear();
    this.linksByIndex.clear();
    this.addresses.clear();
    this.routes.clear();
    this.neighbours.clear();
    this.fdb.clear();
    this.rules.clear();
    for (const link of snapshot.links) this.putLink(link);
    for (const a of snapshot.addresses) this.putAddress(a);
    for (const r of snapshot.routes) this.routes.set(this.routeKeyOf(r), r);
    for (const n of snapshot.neighbours) this.neighbours.set(this.neighbourKeyOf(n), n);
    for (const f of snapshot.fdb) this.putFdb(f);
    for (const r of snapshot.rules) this.rules.set(ruleKey(r), r);
  }

  /** Replaces the links (after creating some); entries on links that vanished are dropped. */
  setLinks(links: readonly KernelLink[]): string[] {
    const present = new Set(links.map((l) => l.ifindex));
    const dropped: string[] = [];
    for (const ifindex of [...this.linksByIndex.keys()]) if (!present.has(ifindex)) dropped.push(...this.removeLink(ifindex));
    for (const link of links) this.putLink(link);
    return dropped;
  }

  /** The name of a link, or `#<ifindex>` for one the view does not know (never matches a desired name). */
  nameOf(ifindex: number | undefined): string {
    if (ifindex === undefined) return '#none';
    return this.linksByIndex.get(ifindex)?.name ?? `#${ifindex}`;
  }

  routeKeyOf(r: KernelRoute): string {
    return routeKey(r.table, r.dst, r.prefixLen, r.metric);
  }

  neighbourKeyOf(n: KernelNeighbour): string {
    return neighbourKey(this.nameOf(n.ifindex), n.ip);
  }

  fdbKeyOf(f: KernelFdb): string {
    return fdbKey(this.nameOf(f.ifindex), f.mac);
  }

  addressesOf(ifindex: number): Map<string, KernelAddress> {
    return this.addresses.get(ifindex) ?? new Map();
  }

  /** Records the effect of an operation the kernel accepted. Returns the entry keys it dropped. */
  applyOp(op: KernelOp): string[] {
    switch (op.op) {
      case 'link.create':
        return [];
      case 'link.delete':
        return this.removeLink(op.ifindex);
      case 'link.set': {
        const link = this.linksByIndex.get(op.ifindex);
        if (link === undefined) return [];
        this.putLink({
          ...link,
          ...(op.mtu === undefined ? {} : { mtu: op.mtu }),
          ...(op.mac === undefined ? {} : { mac: op.mac }),
          ...(op.up === undefined ? {} : { up: op.up }),
          ...(op.master === undefined ? {} : { master: op.master }),
          ...(op.alias === undefined ? {} : { alias: op.alias }),
          ...(op.learning === undefined || link.vxlan === undefined ? {} : { vxlan: { ...link.vxlan, learning: op.learning } }),
        });
        return [];
      }
      case 'addr.add':
        this.putAddress(op.addr);
        return [];
      case 'addr.delete':
        this.addresses.get(op.addr.ifindex)?.delete(`${op.addr.address}/${op.addr.prefixLen}`);
        return [];
      case 'route.replace':
        this.routes.set(this.routeKeyOf(op.route), op.route);
        return [];
      case 'route.delete':
        this.routes.delete(this.routeKeyOf(op.route));
        return [];
      case 'neigh.replace':
        this.neighbours.set(this.neighbourKeyOf(op.neigh), op.neigh);
        return [];
      case 'neigh.delete':
        this.neighbours.delete(this.neighbourKeyOf(op.neigh));
        return [];
      case 'fdb.replace': {
        // The kernel replaces the entry's first remote; lashup keeps one remote per MAC.
        const key = this.fdbKeyOf(op.fdb);
        const list = this.fdb.get(key) ?? [];
        this.fdb.set(key, [op.fdb, ...list.slice(1)]);
        return [];
      }
      case 'fdb.delete':
        this.removeFdb(op.fdb);
        return [];
      case 'rule.add':
        this.rules.set(ruleKey(op.rule), op.rule);
        return [];
      case 'rule.delete':
        this.rules.delete(ruleKey(op.rule));
        return [];
    }
  }

  /**
   * Folds a notification into the view. Returns the keys whose kernel entry changed (empty when
   * the view already showed this), or `links` when a link changed: the caller decides whether
   * that link matters.
   */
  applyEvent(event: KernelEvent): { keys: string[]; link?: KernelLink; linkRemoved?: boolean; uncertain?: boolean } {
    switch (event.type) {
      case 'overflow':
        return { keys: [] };
      case 'link': {
        const known = this.linksByIndex.get(event.link.ifindex);
        if (event.deleted) {
          if (known === undefined) return { keys: [] };
          return { keys: this.removeLink(event.link.ifindex), link: known, linkRemoved: true };
        }
        if (known !== undefined && sameLink(known, event.link)) return { keys: [] };
        if (known !== undefined && known.name !== event.link.name) {
          // A rename re-keys every entry on the link: drop them, a resync re-reads them.
          const keys = this.removeLink(known.ifindex);
          this.putLink(event.link);
          return { keys, link: event.link, linkRemoved: true };
        }
        this.putLink(event.link);
        return { keys: [], link: event.link };
      }
      case 'addr': {
        const map = this.addresses.get(event.addr.ifindex);
        const id = `${event.addr.address}/${event.addr.prefixLen}`;
        if (event.deleted) {
          if (map?.delete(id) !== true) return { keys: [] };
        } else {
          if (map?.has(id) === true) return { keys: [] };
          this.putAddress(event.addr);
        }
        return { keys: [`a|${this.nameOf(event.addr.ifindex)}`] };
      }
      case 'route': {
        const key = this.routeKeyOf(event.route);
        const known = this.routes.get(key);
        if (event.deleted) {
          // A delete names the route; only forget ours if it is the one the kernel removed.
          if (known === undefined || !sameRoute(known, event.route, true)) return { keys: [] };
          this.routes.delete(key);
          return { keys: [key] };
        }
        if (known !== undefined && sameRoute(known, event.route, false)) return { keys: [] };
        this.routes.set(key, event.route);
        return { keys: [key] };
      }
      case 'neigh': {
        const key = this.neighbourKeyOf(event.neigh);
        const known = this.neighbours.get(key);
        if (event.deleted) {
          if (known === undefined) return { keys: [] };
          this.neighbours.delete(key);
          return { keys: [key] };
        }
        if (known !== undefined && known.mac === event.neigh.mac && known.permanent === event.neigh.permanent) return { keys: [] };
        this.neighbours.set(key, event.neigh);
        return { keys: [key] };
      }
      case 'fdb': {
        const key = this.fdbKeyOf(event.fdb);
        const list = this.fdb.get(key) ?? [];
        const index = list.findIndex((f) => f.dst === event.fdb.dst);
        if (event.deleted) {
          if (index < 0) return { keys: [] };
          this.removeFdb(event.fdb);
          return { keys: [key] };
        }
        const existing = index < 0 ? undefined : list[index];
        if (existing !== undefined && existing.permanent === event.fdb.permanent) return { keys: [] };
        this.putFdb(event.fdb);
        // The kernel announces `fdb append` and `fdb replace` (which rewrites the first remote)
        // alike: a new remote on an entry that had one leaves the true remote list unknown.
        return { keys: [key], uncertain: index < 0 && list.length > 0 };
      }
      case 'rule': {
        const key = ruleKey(event.rule);
        const known = this.rules.get(key);
        if (event.deleted) {
          if (known === undefined) return { keys: [] };
          this.rules.delete(key);
          return { keys: [key] };
        }
        if (known !== undefined && known.protocol === event.rule.protocol) return { keys: [] };
        this.rules.set(key, event.rule);
        return { keys: [key] };
      }
    }
  }

  private putLink(link: KernelLink): void {
    const old = this.linksByIndex.get(link.ifindex);
    if (old !== undefined && old.name !== link.name && this.linksByName.get(old.name) === old) this.linksByName.delete(old.name);
    this.linksByIndex.set(link.ifindex, link);
    this.linksByName.set(link.name, link);
  }

  private putAddress(a: KernelAddress): void {
    let map = this.addresses.get(a.ifindex);
    if (map === undefined) {
      map = new Map();
      this.addresses.set(a.ifindex, map);
    }
    map.set(`${a.address}/${a.prefixLen}`, a);
  }

  private putFdb(f: KernelFdb): void {
    const key = this.fdbKeyOf(f);
    const list = this.fdb.get(key);
    if (list === undefined) {
      this.fdb.set(key, [f]);
      return;
    }
    const index = list.findIndex((o) => o.dst === f.dst);
    if (index < 0) list.push(f);
    else list[index] = f;
  }

  private removeFdb(f: KernelFdb): void {
    const key = this.fdbKeyOf(f);
    const list = this.fdb.get(key);
    if (list === undefined) return;
    // A delete without a destination removes the whole entry, as the kernel does.
    const rest = f.dst === undefined ? [] : list.filter((o) => o.dst !== f.dst);
    if (rest.length === 0) this.fdb.delete(key);
    else this.fdb.set(key, rest);
  }

  /**
   * Forgets a link and everything on it. The kernel drops a deleted link's routes without
   * announcing each one (IPv4 never sends RTM_DELROUTE for them), so the view must too.
   */
  private removeLink(ifindex: number): string[] {
    const link = this.linksByIndex.get(ifindex);
    if (link === undefined) return [];
    const dropped: string[] = [];
    for (const [key, r] of this.routes) {
      if (r.ifindex === ifindex) {
        this.routes.delete(key);
        dropped.push(key);
      }
    }
    for (const [key, n] of this.neighbours) {
      if (n.ifindex === ifindex) {
        this.neighbours.delete(key);
        dropped.push(key);
      }
    }
    for (const [key, list] of this.fdb) {
      if (list.some((f) => f.ifindex === ifindex)) {
        this.fdb.delete(key);
        dropped.push(key);
      }
    }
    this.addresses.delete(ifindex);
    this.linksByIndex.delete(ifindex);
    if (this.linksByName.get(link.name) === link) this.linksByName.delete(link.name);
    return dropped;
  }
}

function sameLink(a: KernelLink, b: KernelLink): boolean {
  return (
    a.name === b.name &&
    a.kind === b.kind &&
    a.mtu === b.mtu &&
    a.mac === b.mac &&
    a.up === b.up &&
    a.master === b.master &&
    a.alias === b.alias &&
    a.vxlan?.vni === b.vxlan?.vni &&
    a.vxlan?.port === b.vxlan?.port &&
    a.vxlan?.localIp === b.vxlan?.localIp &&
    a.vxlan?.learning === b.vxlan?.learning
  );
}

/** With `forDelete`, a delete notification matches when it names the same next hop (or none). */
function sameRoute(a: KernelRoute, b: KernelRoute, forDelete: boolean): boolean {
  if (forDelete) return (b.gateway === undefined || a.gateway === b.gateway) && (b.ifindex === undefined || a.ifindex === b.ifindex);
  return a.gateway === b.gateway && a.ifindex === b.ifindex && a.onlink === b.onlink && a.protocol === b.protocol && a.unicast === b.unicast;
}
