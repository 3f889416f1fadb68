/**
 * What the dataplane manages, in two views: the desired state (names, canonical text) that the
 * routes layer hands over, and the kernel's objects (interface indexes) that backends list and
 * notify about.
 *
 * Every address, MAC and prefix is canonical text (`formatIp`, lower-case MACs, network address
 * with zero host bits), so equality of two entries is equality of their fields: the reconciler
 * compares the desired view with the kernel view field by field and issues an operation only
 * for a difference.
 */

/** The main routing table (RT_TABLE_MAIN). */
export const MAIN_TABLE = 254;

/** Attributes of a VXLAN device. VNI, port and local address cannot change in place. */
export interface VxlanAttrs {
  vni: number;
  /** UDP destination port. */
  port: number;
  /** Underlay source address (IPv4 or IPv6). */
  localIp: string;
  /** Source-MAC learning; lashup programs FDB entries itself and keeps this off. */
  learning: boolean;
}

export type LinkKind = 'vxlan' | 'bridge' | 'veth';

/** A link lashup creates and owns (the VTEP and the bridges). */
export interface DesiredLink {
  name: string;
  kind: 'vxlan' | 'bridge';
  mtu: number;
  /** MAC to set; undefined leaves the kernel's choice. */
  mac?: string;
  vxlan?: VxlanAttrs;
}

/** An address on an owned link ("44.128.0.1" with prefix 20). */
export interface DesiredAddress {
  dev: string;
  address: string;
  prefixLen: number;
}

/** A unicast route `dst/prefixLen via gateway dev ... [onlink] proto <lashup>`. */
export interface DesiredRoute {
  /** Network address (host bits zero). */
  dst: string;
  prefixLen: number;
  gateway: string;
  dev: string;
  onlink: boolean;
  /** Routing table; default main (254). */
  table?: number;
  /** Route priority; default 0 for IPv4 and 1024 for IPv6 (the kernel's own defaults). */
  metric?: number;
}

/** A permanent neighbour (ARP/NDP) entry. */
export interface DesiredNeighbour {
  dev: string;
  ip: string;
  mac: string;
}

/** A permanent bridge FDB entry on a VXLAN device: frames to `mac` go to underlay `dst`. */
export interface DesiredFdb {
  dev: string;
  mac: string;
  dst: string;
}

/** A policy routing rule `from src/srcLen to dst/dstLen [fwmark] lookup table pref priority`. */
export interface DesiredRule {
  family: 4 | 6;
  priority: number;
  table: number;
  src?: string;
  srcLen?: number;
  dst?: string;
  dstLen?: number;
  fwmark?: number;
}

export interface DesiredState {
  links: DesiredLink[];
  addresses: DesiredAddress[];
  routes: DesiredRoute[];
  neighbours: DesiredNeighbour[];
  fdb: DesiredFdb[];
  rules: DesiredRule[];
}

export function emptyDesiredState(): DesiredState {
  return { links: [], addresses: [], routes: [], neighbours: [], fdb: [], rules: [] };
}

/** A link as the kernel reports it. `kind` is empty for links without link info (lo, physical). */
export interface KernelLink {
  ifindex: number;
  name: string;
  kind: string;
  mtu: number;
  mac?: string;
  up: boolean;
  /** ifindex of the bridge this link is enslaved to. */
  master?: number;
  /** Interface alias; lashup marks the links it creates with its owner tag. */
  alias?: string;
  vxlan?: VxlanAttrs;
}

export interface KernelAddress {
  ifindex: number;
  family: 4 | 6;
  address: string;
  prefixLen: number;
}

export interface KernelRoute {
  family: 4 | 6;
  table: number;
  dst: string;
  prefixLen: number;
  gateway?: string;
  ifindex?: number;
  protocol: number;
  onlink: boolean;
  metric: number;
  /** Only unicast routes are ever compared or touched; others (local, broadcast) are listed for completeness. */
  unicast: boolean;
}

export interface KernelNeighbour {
  ifindex: number;
  family: 4 | 6;
  ip: string;
  mac?: string;
  permanent: boolean;
}

export interface KernelFdb {
  ifindex: number;
  mac: string;
  dst?: string;
  permanent: boolean;
}

export interface KernelRule {
  family: 4 | 6;
  priority: number;
  table: number;
  src?: string;
  srcLen: number;
  dst?: string;
  dstLen: number;
  fwmark?: number;
  protocol: number;
}

/** Everything a backend lists at a resync. */
export interface KernelSnapshot {
  links: KernelLink[];
  addresses: KernelAddress[];
  routes: KernelRoute[];
  neighbours: KernelNeighbour[];
  fdb: KernelFdb[];
  rules: KernelRule[];
}

/** Link creation: VXLAN, bridge or veth pair (`peer` is the other end's name). */
export interface LinkCreateSpec {
  name: string;
  kind: LinkKind;
  mtu?: number;
  mac?: string;
  alias?: string;
  vxlan?: VxlanAttrs;
  /** veth only: the peer's name. */
  peer?: string;
  /** veth only: an open file descriptor of the network namespace that receives the peer. */
  peerNetnsFd?: number;
}

/** One kernel operation. Objects are addressed by ifindex, resolved by the caller. */
export type KernelOp =
  | { op: 'link.create'; link: LinkCreateSpec }
  | { op: 'link.delete'; ifindex: number }
  | { op: 'link.set'; ifindex: number; mtu?: number; mac?: string; up?: boolean; master?: number; alias?: string; learning?: boolean }
  | { op: 'addr.add'; addr: KernelAddress }
  | { op: 'addr.delete'; addr: KernelAddress }
  | { op: 'route.replace'; route: KernelRoute }
  | { op: 'route.delete'; route: KernelRoute }
  | { op: 'neigh.replace'; neigh: KernelNeighbour }
  | { op: 'neigh.delete'; neigh: KernelNeighbour }
  | { op: 'fdb.replace'; fdb: KernelFdb }
  | { op: 'fdb.delete'; fdb: KernelFdb }
  | { op: 'rule.add'; rule: KernelRule }
  | { op: 'rule.delete'; rule: KernelRule };

export type KernelOpName = KernelOp['op'];

export const KERNEL_OP_NAMES: readonly KernelOpName[] = [
  'link.create',
  'link.delete',
  'link.set',
  'addr.add',
  'addr.delete',
  'route.replace',
  'route.delete',
  'neigh.replace',
  'neigh.delete',
  'fdb.replace',
  'fdb.delete',
  'rule.add',
  'rule.delete',
];

/** A change the kernel announced. `overflow` means notifications were lost: resync. */
export type KernelEvent =
  | { type: 'link'; deleted: boolean; link: KernelLink }
  | { type: 'addr'; deleted: boolean; addr: KernelAddress }
  | { type: 'route'; deleted: boolean; route: KernelRoute }
  | { type: 'neigh'; deleted: boolean; neigh: KernelNeighbour }
  | { type: 'fdb'; deleted: boolean; fdb: KernelFdb }
  | { type: 'rule'; deleted: boolean; rule: KernelRule }
  | { type: 'overflow'; reason: string };
