/**
 * An in-memory kernel for tests. It keeps links, addresses, routes, neighbours, FDB entries and
 * rules, rejects what the kernel rejects (EEXIST, ENOENT, ESRCH, ENODEV, EINVAL, ENETUNREACH for
 * a gateway that is not on-link, ENETDOWN for an on-link route through a down link), announces
 * changes to subscribers asynchronously, and can fail any single operation once on request.
 *
 * Two kernel habits it reproduces on purpose, because the reconciler must cope with them: routes
 * through a link that is deleted or set down disappear without any route notification (IPv4
 * does this), and notifications arrive after the operation's acknowledgement.
 */
import { cidrContains, parseAddress, parseCidr, formatCidr, isValidInterfaceName } from '../common/index.js';
import { KernelError } from './errors.js';
import { describeOp, type Kernel } from './kernel.js';
import type { KernelAddress, KernelEvent, KernelFdb, KernelLink, KernelNeighbour, KernelOp, KernelOpName, KernelRoute, KernelRule, KernelSnapshot } from './types.js';

interface Failure {
  op: KernelOpName | 'list' | 'any';
  errno: string;
  match: ((op: KernelOp) => boolean) | undefined;
}

export interface FakeKernelOptions {
  /** Deliver change notifications (default true); false exercises the periodic-resync path. */
  notifications?: boolean;
  /**
   * Deliver each batch's notifications before its acknowledgements (default false). The real
   * kernel's two sockets race; this is the order that once forced spurious resyncs.
   */
  echoBeforeAck?: boolean;
}

const routeId = (r: KernelRoute): string => `${r.table}|${r.dst}/${r.prefixLen}|${r.metric}`;
const neighId = (n: KernelNeighbour): string => `${n.ifindex}|${n.ip}`;
const ruleId = (r: KernelRule): string => `${r.family}|${r.priority}|${r.table}|${r.src ?? ''}/${r.srcLen}|${r.dst ?? ''}/${r.dstLen}|${r.fwmark ?? ''}`;

export class FakeKernel implements Kernel {
  private readonly links = new Map<number, KernelLink & { peer?: number }>();
  private readonly addresses: KernelAddress[] = [];
  private readonly routes = new Map<string, KernelRoute>();
  private readonly neighbours = new Map<string, KernelNeighbour>();
  private readonly fdb: KernelFdb[] = [];
  private readonly rules = new Map<string, KernelRule>();
  private readonly listeners = new Set<(event: KernelEvent) => void>();
  private readonly failures: Failure[] = [];
  private readonly pending: KernelEvent[] = [];
  private nextIndex = 1;
  private closed = false;
  private readonly notify: boolean;
  private readonly echoBeforeAck: boolean;
  /** Every operation the kernel accepted, in order (tests assert on it). */
  readonly accepted: KernelOp[] = [];
  /** Every operation attempted, accepted or not. */
  attempted = 0;
  /** Number of listings served. */
  listings = 0;

  constructor(options: FakeKernelOptions = {}) {
    this.notify = options.notifications ?? true;
    this.echoBeforeAck = options.echoBeforeAck ?? false;
    this.insertLink({ name: 'lo', kind: '', mtu: 65_536, up: true });
  }

  /** Makes the next operation of this kind (matching `match`, when given) fail once with `errno`. */
  failNext(op: KernelOpName | 'list', errno = 'EIO', match?: (op: KernelOp) => boolean): void {
    this.failures.push({ op, errno, match });
  }

  /** Makes the operation attempted `index`-th (counting from 0 over this kernel's life) fail with `errno`. */
  failAttempt(index: number, errno = 'EIO'): void {
    this.failures.push({ op: 'any', errno, match: () => this.attempted - 1 === index });
  }

  /** Pending injected failures. */
  get pendingFailures(): number {
    return this.failures.length;
  }

  /** Announces lost notifications, as a netlink socket overflow would. */
  overflow(): void {
    this.emit({ type: 'overflow', reason: 'injected' });
  }

  /** Adds a link directly (a physical NIC, or state left from an earlier run); returns its ifindex. */
  insertLink(link: Omit<KernelLink, 'ifindex'> & { ifindex?: number }): number {
    const ifindex = link.ifindex ?? this.nextIndex;
    this.nextIndex = Math.max(this.nextIndex, ifindex + 1);
    this.links.set(ifindex, { ...link, ifindex, mac: link.mac ?? this.macFor(ifindex) });
    return ifindex;
  }

  /** Adds objects directly, without validation or notification (pre-existing kernel state). */
  insert(state: Partial<Omit<KernelSnapshot, 'links'>>): void {
    for (const a of state.addresses ?? []) this.addresses.push(a);
    for (const r of state.routes ?? []) this.routes.set(routeId(r), r);
    for (const n of state.neighbours ?? []) this.neighbours.set(neighId(n), n);
    for (const f of state.fdb ?? []) this.fdb.push(f);
    for (const r of state.rules ?? []) this.rules.set(ruleId(r), r);
  }

  linkByName(name: string): KernelLink | undefined {
    for (const link of this.links.values()) if (link.name === name) return this.copyLink(link);
    return undefined;
  }

  async snapshot(): Promise<KernelSnapshot> {
    this.checkOpen();
    this.maybeFailList();
    this.listings++;
    return this.state();
  }

  /** The current state, synchronously (for assertions). */
  state(): KernelSnapshot {
    return {
      links: [...this.links.values()].map((l) => this.copyLink(l)),
      addresses: this.addresses.map((a) => ({ ...a })),
      routes: [...this.routes.values()].map((r) => ({ ...r })),
      neighbours: [...this.neighbours.values()].map((n) => ({ ...n })),
      fdb: this.fdb.map((f) => ({ ...f })),
      rules: [...this.rules.values()].map((r) => ({ ...r })),
    };
  }

  async listLinks(): Promise<KernelLink[]> {
    this.checkOpen();
    this.maybeFailList();
    return [...this.links.values()].map((l) => this.copyLink(l));
  }

  async execute(ops: readonly KernelOp[]): Promise<(KernelError | undefined)[]> {
    this.checkOpen();
    const results: (KernelError | undefined)[] = [];
    for (const op of ops) {
      this.attempted++;
      const failure = this.failures.findIndex((f) => (f.op === op.op || f.op === 'any') && (f.match === undefined || f.match(op)));
      if (failure >= 0) {
        const [f] = this.failures.splice(failure, 1);
        results.push(new KernelError((f as Failure).errno, describeOp(op)));
        continue;
      }
      const errno = this.perform(op);
      if (errno === undefined) this.accepted.push(op);
      results.push(errno === undefined ? undefined : new KernelError(errno, describeOp(op)));
    }
    if (this.echoBeforeAck) {
      const events = this.pending.splice(0);
      for (const e of events) for (const listener of this.listeners) listener(e);
    }
    return results;
  }

  subscribe(listener: (event: KernelEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new KernelError('EBADF', 'use of a closed fake kernel');
  }

  private maybeFailList(): void {
    const index = this.failures.findIndex((f) => f.op === 'list');
    if (index >= 0) {
      const [f] = this.failures.splice(index, 1);
      throw new KernelError((f as Failure).errno, 'list');
    }
  }

  private emit(event: KernelEvent): void {
    if (!this.notify && event.type !== 'overflow') return;
    // Notifications reach listeners after the caller has seen the acknowledgement, as they do
    // over a second socket: a macrotask, not a microtask, which would run first.
    this.pending.push(event);
    if (this.pending.length === 1) {
      setImmediate(() => {
        const events = this.pending.splice(0);
        for (const e of events) for (const listener of this.listeners) listener(e);
      });
    }
  }

  private macFor(ifindex: number): string {
    return `02:00:00:00:${((ifindex >> 8) & 255).toString(16).padStart(2, '0')}:${(ifindex & 255).toString(16).padStart(2, '0')}`;
  }

  private copyLink(link: KernelLink & { peer?: number }): KernelLink {
    const { peer: _peer, ...rest } = link;
    return { ...rest, ...(rest.vxlan === undefined ? {} : { vxlan: { ...rest.vxlan } }) };
  }

  /** Applies one operation; returns the errno name on refusal. */
  private perform(op: KernelOp): string | undefined {
    switch (op.op) {
      case 'link.create':
        return this.createLink(op.link);
      case 'link.delete':
        return this.deleteLink(op.ifindex);
      case 'link.set':
        return this.setLink(op);
      case 'addr.add': {
        if (!this.links.has(op.addr.ifindex)) return 'ENODEV';
        if (this.findAddress(op.addr) >= 0) return 'EEXIST';
        this.addresses.push({ ...op.addr });
        this.addConnectedRoute(op.addr);
        this.emit({ type: 'addr', deleted: false, addr: { ...op.addr } });
        return undefined;
      }
      case 'addr.delete': {
        const index = this.findAddress(op.addr);
        if (index < 0) return 'EADDRNOTAVAIL';
        this.addresses.splice(index, 1);
        const connected = this.connectedRoute(op.addr);
        if (connected !== undefined) this.routes.delete(routeId(connected));
        this.emit({ type: 'addr', deleted: true, addr: { ...op.addr } });
        return undefined;
      }
      case 'route.replace':
        return this.replaceRoute(op.route);
      case 'route.delete': {
        const existing = this.routes.get(routeId(op.route));
        if (existing === undefined) return 'ESRCH';
        this.routes.delete(routeId(op.route));
        this.emit({ type: 'route', deleted: true, route: { ...existing } });
        return undefined;
      }
      case 'neigh.replace': {
        const link = this.links.get(op.neigh.ifindex);
        if (link === undefined) return 'ENODEV';
        if (parseAddress(op.neigh.ip)?.family !== op.neigh.family) return 'EINVAL';
        this.neighbours.set(neighId(op.neigh), { ...op.neigh });
        this.emit({ type: 'neigh', deleted: false, neigh: { ...op.neigh } });
        return undefined;
      }
      case 'neigh.delete': {
        const existing = this.neighbours.get(neighId(op.neigh));
        if (existing === undefined) return 'ENOENT';
        this.neighbours.delete(neighId(op.neigh));
        this.emit({ type: 'neigh', deleted: true, neigh: existing });
        return undefined;
      }
      case 'fdb.replace': {
        const link = this.links.get(op.fdb.ifindex);
        if (link === undefined) return 'ENODEV';
        if (link.kind !== 'vxlan') return 'EOPNOTSUPP';
        if (op.fdb.dst === undefined) return 'EINVAL';
        const index = this.fdb.findIndex((f) => f.ifindex === op.fdb.ifindex && f.mac === op.fdb.mac);
        // Replace rewrites the entry's first remote, like vxlan_fdb_update.
        if (index >= 0) this.fdb[index] = { ...op.fdb };
        else this.fdb.push({ ...op.fdb });
        this.emit({ type: 'fdb', deleted: false, fdb: { ...op.fdb } });
        return undefined;
      }
      case 'fdb.delete': {
        const matches = this.fdb.filter((f) => f.ifindex === op.fdb.ifindex && f.mac === op.fdb.mac && (op.fdb.dst === undefined || f.dst === op.fdb.dst));
        if (matches.length === 0) return 'ENOENT';
        for (const m of matches) {
          this.fdb.splice(this.fdb.indexOf(m), 1);
          this.emit({ type: 'fdb', deleted: true, fdb: { ...m } });
        }
        return undefined;
      }
      case 'rule.add': {
        if (this.rules.has(ruleId(op.rule))) return 'EEXIST';
        this.rules.set(ruleId(op.rule), { ...op.rule });
        this.emit({ type: 'rule', deleted: false, rule: { ...op.rule } });
        return undefined;
      }
      case 'rule.delete': {
        const existing = this.rules.get(ruleId(op.rule));
        if (existing === undefined) return 'ENOENT';
        this.rules.delete(ruleId(op.rule));
        this.emit({ type: 'rule', deleted: true, rule: existing });
        return undefined;
      }
    }
  }

  private createLink(spec: Extract<KernelOp, { op: 'link.create' }>['link']): string | undefined {
    if (!isValidInterfaceName(spec.name)) return 'EINVAL';
    if (this.linkByName(spec.name) !== undefined) return 'EEXIST';
    if (spec.mtu !== undefined && (spec.mtu < 68 || spec.mtu > 65_535)) return 'EINVAL';
    if (spec.kind === 'vxlan' && spec.vxlan === undefined) return 'EINVAL';
    if (spec.kind === 'veth') {
      if (spec.peer === undefined || !isValidInterfaceName(spec.peer)) return 'EINVAL';
      if (spec.peerNetnsFd === undefined && this.linkByName(spec.peer) !== undefined) return 'EEXIST';
    }
    const base = { kind: spec.kind as string, mtu: spec.mtu ?? 1500, up: false, ...(spec.alias === undefined ? {} : { alias: spec.alias }) };
    const ifindex = this.insertLink({ ...base, name: spec.name, ...(spec.mac === undefined ? {} : { mac: spec.mac }), ...(spec.vxlan === undefined ? {} : { vxlan: { ...spec.vxlan } }) });
    if (spec.kind === 'veth' && spec.peerNetnsFd === undefined) {
      const peer = this.insertLink({ kind: 'veth', mtu: spec.mtu ?? 1500, up: false, name: spec.peer as string });
      (this.links.get(ifindex) as { peer?: number }).peer = peer;
      (this.links.get(peer) as { peer?: number }).peer = ifindex;
      this.emit({ type: 'link', deleted: false, link: this.copyLink(this.links.get(peer) as KernelLink) });
    }
    this.emit({ type: 'link', deleted: false, link: this.copyLink(this.links.get(ifindex) as KernelLink) });
    return undefined;
  }

  private deleteLink(ifindex: number): string | undefined {
    const link = this.links.get(ifindex);
    if (link === undefined) return 'ENODEV';
    this.dropLink(link);
    if (link.peer !== undefined) {
      const peer = this.links.get(link.peer);
      if (peer !== undefined) this.dropLink(peer);
    }
    return undefined;
  }

  private dropLink(link: KernelLink): void {
    this.links.delete(link.ifindex);
    for (let i = this.addresses.length - 1; i >= 0; i--) if ((this.addresses[i] as KernelAddress).ifindex === link.ifindex) this.addresses.splice(i, 1);
    this.dropRoutesVia(link.ifindex);
    for (const [id, n] of this.neighbours) {
      if (n.ifindex !== link.ifindex) continue;
      this.neighbours.delete(id);
      this.emit({ type: 'neigh', deleted: true, neigh: n });
    }
    for (let i = this.fdb.length - 1; i >= 0; i--) {
      const f = this.fdb[i] as KernelFdb;
      if (f.ifindex !== link.ifindex) continue;
      this.fdb.splice(i, 1);
      this.emit({ type: 'fdb', deleted: true, fdb: f });
    }
    for (const other of this.links.values()) if (other.master === link.ifindex) delete other.master;
    this.emit({ type: 'link', deleted: true, link: this.copyLink(link) });
  }

  /** Silently, as IPv4 does when a link goes away or down. */
  private dropRoutesVia(ifindex: number): void {
    for (const [id, r] of this.routes) if (r.ifindex === ifindex) this.routes.delete(id);
  }

  private setLink(op: Extract<KernelOp, { op: 'link.set' }>): string | undefined {
    const link = this.links.get(op.ifindex);
    if (link === undefined) return 'ENODEV';
    if (op.mtu !== undefined && (op.mtu < 68 || op.mtu > 65_535)) return 'EINVAL';
    if (op.master !== undefined) {
      const master = this.links.get(op.master);
      if (master === undefined) return 'ENODEV';
      if (master.kind !== 'bridge' || master.ifindex === link.ifindex) return 'EINVAL';
    }
    if (op.learning !== undefined && link.vxlan === undefined) return 'EINVAL';
    if (op.mtu !== undefined) link.mtu = op.mtu;
    if (op.mac !== undefined) link.mac = op.mac;
    if (op.master !== undefined) link.master = op.master;
    if (op.alias !== undefined) link.alias = op.alias;
    if (op.learning !== undefined && link.vxlan !== undefined) link.vxlan.learning = op.learning;
    if (op.up !== undefined && op.up !== link.up) {
      link.up = op.up;
      if (!op.up) this.dropRoutesVia(link.ifindex);
      else for (const a of this.addresses) if (a.ifindex === link.ifindex) this.addConnectedRoute(a);
    }
    this.emit({ type: 'link', deleted: false, link: this.copyLink(link) });
    return undefined;
  }

  private replaceRoute(route: KernelRoute): string | undefined {
    if (route.ifindex === undefined) return 'EINVAL';
    const link = this.links.get(route.ifindex);
    if (link === undefined) return 'ENODEV';
    const dst = parseCidr(`${route.dst}/${route.prefixLen}`);
    if (dst === undefined || dst.family !== route.family) return 'EINVAL';
    if (route.gateway !== undefined) {
      const gw = parseAddress(route.gateway);
      if (gw === undefined || gw.family !== route.family) return 'EINVAL';
      if (route.onlink) {
        if (!link.up) return 'ENETDOWN';
      } else {
        const onLink = this.addresses.some((a) => {
          if (a.ifindex !== route.ifindex || a.family !== route.family) return false;
          const net = parseCidr(`${a.address}/${a.prefixLen}`, false);
          return net !== undefined && cidrContains(net, gw.family, gw.value);
        });
        if (!onLink) return 'ENETUNREACH';
      }
    }
    this.routes.set(routeId(route), { ...route });
    this.emit({ type: 'route', deleted: false, route: { ...route } });
    return undefined;
  }

  private findAddress(a: KernelAddress): number {
    return this.addresses.findIndex((o) => o.ifindex === a.ifindex && o.address === a.address && o.prefixLen === a.prefixLen);
  }

  private connectedRoute(a: KernelAddress): KernelRoute | undefined {
    const net = parseCidr(`${a.address}/${a.prefixLen}`, false);
    if (net === undefined) return undefined;
    const [dst] = formatCidr(net).split('/') as [string];
    return { family: a.family, table: 254, dst, prefixLen: a.prefixLen, ifindex: a.ifindex, protocol: 2, onlink: false, metric: a.family === 4 ? 0 : 256, unicast: true };
  }

  private addConnectedRoute(a: KernelAddress): void {
    const route = this.connectedRoute(a);
    if (route !== undefined && this.links.get(a.ifindex)?.up === true) this.routes.set(routeId(route), route);
  }
}
