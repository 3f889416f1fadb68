/**
 * Translation between lashup's kernel operations and rtnetlink messages, and from rtnetlink
 * messages (dump replies and notifications) back to kernel objects. Pure: it builds and parses
 * buffers with the `netlink` package's struct codecs and never touches a socket, so it is tested
 * without root.
 *
 * Known gaps in the package that this file covers (see STACK.md): the route flag RTNH_F_ONLINK
 * has no name (bit 4 of `rtm_flags`), IFLA_LINKINFO is an opaque buffer, and veth peers
 * (VETH_INFO_PEER) have no codec.
 */
import { AttrStream, ifla, rt } from './netlink-lib.js';
import { formatIp, formatMac, parseIp, parseMac } from '../common/index.js';
import type { KernelAddress, KernelEvent, KernelFdb, KernelLink, KernelNeighbour, KernelOp, KernelRoute, KernelRule, LinkCreateSpec } from './types.js';

/** rtnetlink message types (linux/rtnetlink.h). */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
  NEWRULE: 32,
  DELRULE: 33,
  GETRULE: 34,
} as const;

/** Netlink header flags (linux/netlink.h). */
export const NLM_F = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, DUMP: 0x300 } as const;

/** Multicast groups of the notification socket (RTNLGRP_*, group numbers, not masks). */
export const RTNLGRP = { LINK: 1, NEIGH: 3, IPV4_IFADDR: 5, IPV4_ROUTE: 7, IPV4_RULE: 8, IPV6_IFADDR: 9, IPV6_ROUTE: 11, IPV6_RULE: 19 } as const;

const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;
/** RTNH_F_ONLINK, reported and accepted in `rtm_flags`. */
const RTNH_F_ONLINK = 4;
const RTN_UNICAST = 1;
const FR_ACT_TO_TBL = 1;
const IFLA_IFNAME = 3;
const IFLA_NET_NS_FD = 28;
const VETH_INFO_PEER = 1;
// Attribute and field values the fast encoder writes by hand (linux/rtnetlink.h, neighbour.h).
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_TABLE = 15;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;

/** One request, ready to frame: message type, header flags (besides REQUEST|ACK) and payload. */
export interface EncodedOp {
  type: number;
  flags: number;
  payload: Buffer;
}

const afOf = (family: 4 | 6): number => (family === 4 ? AF_INET : AF_INET6);
const familyOf = (af: number | undefined): 4 | 6 | undefined => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined);

function ipBytes(text: string): Buffer {
  const ip = parseIp(text);
  if (ip === undefined) throw new TypeError(`not an IP address: ${text}`);
  return Buffer.from(ip.bytes);
}

function macBytes(text: string): Buffer {
  const mac = parseMac(text);
  if (mac === undefined) throw new TypeError(`not a MAC address: ${text}`);
  return Buffer.from(mac);
}

function collect(write: (out: AttrStream) => void): Buffer {
  const out = new AttrStream();
  write(out);
  return Buffer.concat(out.bufs as Uint8Array[]);
}

function attrsBuffer(data: unknown): Buffer {
  const out = new AttrStream();
  out.emit(data as never);
  return Buffer.concat(out.bufs as Uint8Array[]);
}

/** One netlink attribute (type, payload), padded to four bytes. */
function rawAttr(type: number, payload: Buffer): Buffer {
  const length = 4 + payload.length;
  const out = Buffer.alloc((length + 3) & ~3);
  out.writeUInt16LE(length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

function linkInfo(spec: LinkCreateSpec): Buffer {
  if (spec.kind === 'vxlan') {
    const v = spec.vxlan;
    if (v === undefined) throw new TypeError(`vxlan link ${spec.name} without attributes`);
    const port = Buffer.alloc(2);
    port.writeUInt16BE(v.port);
    const local = ipBytes(v.localIp);
    const data = attrsBuffer(ifla.formatVxlan({ id: v.vni, port, learning: v.learning ? 1 : 0, ...(local.length === 4 ? { local } : { local6: local }) }));
    return attrsBuffer(ifla.formatInfo({ kind: 'vxlan', data }));
  }
  if (spec.kind === 'veth') {
    if (spec.peer === undefined) throw new TypeError(`veth link ${spec.name} without a peer`);
    const name = Buffer.from(`${spec.peer}\0`);
    const peer = Buffer.concat([Buffer.alloc(16), rawAttr(IFLA_IFNAME, name), ...(spec.peerNetnsFd === undefined ? [] : [rawAttr(IFLA_NET_NS_FD, u32(spec.peerNetnsFd))])]);
    return attrsBuffer(ifla.formatInfo({ kind: 'veth', data: rawAttr(VETH_INFO_PEER, peer) }));
  }
  return attrsBuffer(ifla.formatInfo({ kind: spec.kind }));
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

function routeMessage(r: KernelRoute, forDelete: boolean): Buffer {
  // Attributes in type order (the package writes them in insertion order), as the fast path does.
  const attrs: rt.RouteAttrs = {};
  if (r.prefixLen > 0) attrs.dst = ipBytes(r.dst);
  if (!forDelete && r.ifindex !== undefined) attrs.oif = r.ifindex;
  if (!forDelete && r.gateway !== undefined) attrs.gateway = ipBytes(r.gateway);
  attrs.priority = r.metric;
  if (r.table > 255) attrs.table = r.table;
  return collect((out) =>
    rt.formatRouteMessage(
      {
        kind: 'route',
        data: {
          family: afOf(r.family),
          dstLen: r.prefixLen,
          table: r.table > 255 ? 252 : r.table,
          protocol: r.protocol as rt.RouteProtocol,
          // RT_SCOPE_UNIVERSE, also when deleting: lashup's routes are all gateway routes of that
          // scope, and on Linux 6.18 an IPv4 delete with RT_SCOPE_NOWHERE ("any scope", what
          // iproute2 sends) failed with ESRCH for every route sent through this package.
          scope: 0,
          type: forDelete ? 0 : RTN_UNICAST,
          flags: r.onlink && !forDelete ? { __unknown: RTNH_F_ONLINK } : {},
        },
        attrs,
      },
      out,
    ),
  );
}

function neighMessage(n: KernelNeighbour): Buffer {
  return collect((out) =>
    rt.formatNeighborMessage(
      {
        kind: 'neighbor',
        data: { family: afOf(n.family), ifindex: n.ifindex, state: n.permanent ? { permanent: true } : {} },
        attrs: { dst: ipBytes(n.ip), ...(n.mac === undefined ? {} : { lladdr: macBytes(n.mac) }) },
      },
      out,
    ),
  );
}

function fdbMessage(f: KernelFdb): Buffer {
  return collect((out) =>
    rt.formatNeighborMessage(
      {
        kind: 'neighbor',
        data: { family: AF_BRIDGE, ifindex: f.ifindex, state: f.permanent ? { permanent: true } : {}, flags: { self: true } },
        attrs: { lladdr: macBytes(f.mac), ...(f.dst === undefined ? {} : { dst: ipBytes(f.dst) }) },
      },
      out,
    ),
  );
}

function ruleMessage(r: KernelRule): Buffer {
  const attrs: rt.RuleAttrs = { priority: r.priority, table: r.table, protocol: r.protocol };
  if (r.src !== undefined && r.srcLen > 0) attrs.src = ipBytes(r.src);
  if (r.dst !== undefined && r.dstLen > 0) attrs.dst = ipBytes(r.dst);
  if (r.fwmark !== undefined) attrs.fwmark = r.fwmark;
  return collect((out) =>
    rt.formatRuleMessage(
      { kind: 'rule', data: { family: afOf(r.family), srcLen: r.srcLen, dstLen: r.dstLen, table: r.table > 255 ? 252 : r.table, action: FR_ACT_TO_TBL as rt.RuleAction }, attrs },
      out,
    ),
  );
}

/**
 * An address message; `add` marks an IPv6 address to be used at once, without duplicate address
 * detection. Every address the dataplane adds was allocated by the masters (never to two agents),
 * so DAD has nothing to find, and it holds the address "tentative", unusable, until the link
 * has carrier: a bridge with no container yet has none, so its IPv6 gateway stayed tentative
 * and the DNS server retried binding it every second for as long as the bridge stayed empty.
 */
function addressMessage(a: KernelAddress, add: boolean): Buffer {
  const ip = ipBytes(a.address);
  const attrs: rt.AddressAttrs = a.family === 4 ? { local: ip, address: ip } : { address: ip, ...(add ? { flags: { nodad: true } } : {}) };
  return collect((out) => rt.formatAddressMessage({ kind: 'address', data: { family: afOf(a.family), prefixlen: a.prefixLen, index: a.ifindex }, attrs }, out));
}

/** The rtnetlink request for one operation. Replace semantics where the kernel has them. */
export function encodeOp(op: KernelOp): EncodedOp {
  const create = NLM_F.CREATE | NLM_F.EXCL;
  const replace = NLM_F.CREATE | NLM_F.REPLACE;
  switch (op.op) {
    case 'link.create': {
      const l = op.link;
      const attrs: ifla.LinkAttrs = { ifname: l.name, linkinfo: linkInfo(l) };
      if (l.mtu !== undefined) attrs.mtu = l.mtu;
      if (l.mac !== undefined) attrs.address = macBytes(l.mac);
      if (l.alias !== undefined) attrs.ifalias = l.alias;
      return { type: RTM.NEWLINK, flags: create, payload: collect((out) => rt.formatLinkMessage({ kind: 'link', data: {}, attrs }, out)) };
    }
    case 'link.delete':
      return { type: RTM.DELLINK, flags: 0, payload: collect((out) => rt.formatLinkMessage({ kind: 'link', data: { index: op.ifindex }, attrs: {} }, out)) };
    case 'link.set': {
      const attrs: ifla.LinkAttrs = {};
      if (op.mtu !== undefined) attrs.mtu = op.mtu;
      if (op.mac !== undefined) attrs.address = macBytes(op.mac);
      if (op.master !== undefined) attrs.master = op.master;
      if (op.alias !== undefined) attrs.ifalias = op.alias;
      if (op.learning !== undefined) attrs.linkinfo = attrsBuffer(ifla.formatInfo({ kind: 'vxlan', data: attrsBuffer(ifla.formatVxlan({ learning: op.learning ? 1 : 0 })) }));
      const data: rt.Link = { index: op.ifindex };
      if (op.up !== undefined) {
        data.flags = op.up ? { up: true } : {};
        data.change = { up: true };
      }
      return { type: RTM.NEWLINK, flags: 0, payload: collect((out) => rt.formatLinkMessage({ kind: 'link', data, attrs }, out)) };
    }
    case 'addr.add':
      return { type: RTM.NEWADDR, flags: create, payload: addressMessage(op.addr, true) };
    case 'addr.delete':
      return { type: RTM.DELADDR, flags: 0, payload: addressMessage(op.addr, false) };
    case 'route.replace':
      return { type: RTM.NEWROUTE, flags: replace, payload: routeMessage(op.route, false) };
    case 'route.delete':
      return { type: RTM.DELROUTE, flags: 0, payload: routeMessage(op.route, true) };
    case 'neigh.replace':
      return { type: RTM.NEWNEIGH, flags: replace, payload: neighMessage(op.neigh) };
    case 'neigh.delete':
      return { type: RTM.DELNEIGH, flags: 0, payload: neighMessage({ ...op.neigh, mac: undefined }) };
    case 'fdb.replace':
      return { type: RTM.NEWNEIGH, flags: replace, payload: fdbMessage(op.fdb) };
    case 'fdb.delete':
      return { type: RTM.DELNEIGH, flags: 0, payload: fdbMessage(op.fdb) };
    case 'rule.add':
      return { type: RTM.NEWRULE, flags: create, payload: ruleMessage(op.rule) };
    case 'rule.delete':
      return { type: RTM.DELRULE, flags: 0, payload: ruleMessage(op.rule) };
  }
}

/** A complete netlink message (header plus payload), padded to four bytes for batching. */
export function frame(encoded: EncodedOp, seq: number, port: number, ack = true): Buffer {
  const length = 16 + encoded.payload.length;
  const out = Buffer.alloc((length + 3) & ~3);
  out.writeUInt32LE(length, 0);
  out.writeUInt16LE(encoded.type, 4);
  out.writeUInt16LE(encoded.flags | NLM_F.REQUEST | (ack ? NLM_F.ACK : 0), 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(port >>> 0, 12);
  encoded.payload.copy(out, 16);
  return out;
}

const numeric = (value: unknown, names: Record<string, unknown>): number =>
  typeof value === 'number' ? value : typeof value === 'string' && typeof names[value] === 'number' ? (names[value] as number) : 0;

const ipText = (b: Buffer | undefined): string | undefined => (b === undefined || (b.length !== 4 && b.length !== 16) ? undefined : formatIp(b));

export function decodeLink(m: rt.LinkMessage): KernelLink | undefined {
  const index = m.data.index;
  const name = m.attrs.ifname;
  if (index === undefined || name === undefined) return undefined;
  const link: KernelLink = { ifindex: index, name, kind: '', mtu: m.attrs.mtu ?? 0, up: m.data.flags?.up === true };
  if (m.attrs.address !== undefined && m.attrs.address.length === 6) link.mac = formatMac(m.attrs.address);
  if (m.attrs.master !== undefined && m.attrs.master > 0) link.master = m.attrs.master;
  if (m.attrs.ifalias !== undefined && m.attrs.ifalias !== '') link.alias = m.attrs.ifalias;
  if (m.attrs.linkinfo !== undefined) {
    const info = ifla.parseInfo(m.attrs.linkinfo);
    link.kind = info.kind ?? '';
    if (info.kind === 'vxlan' && info.data !== undefined) {
      const v = ifla.parseVxlan(info.data);
      const local = ipText(v.local) ?? ipText(v.local6);
      link.vxlan = { vni: v.id ?? 0, port: v.port === undefined ? 0 : v.port.readUInt16BE(0), localIp: local ?? '', learning: v.learning === 1 };
    }
  }
  return link;
}

export function decodeAddress(m: rt.AddressMessage): KernelAddress | undefined {
  const family = familyOf(m.data.family);
  const address = ipText(m.attrs.local ?? m.attrs.address);
  if (family === undefined || address === undefined || m.data.index === undefined) return undefined;
  return { ifindex: m.data.index, family, address, prefixLen: m.data.prefixlen ?? 0 };
}

export function decodeRoute(m: rt.RouteMessage): KernelRoute | undefined {
  const family = familyOf(m.data.family);
  if (family === undefined) return undefined;
  const dst = ipText(m.attrs.dst) ?? (family === 4 ? '0.0.0.0' : '::');
  const route: KernelRoute = {
    family,
    table: m.attrs.table ?? m.data.table ?? 0,
    dst,
    prefixLen: m.data.dstLen ?? 0,
    protocol: numeric(m.data.protocol, rt.RouteProtocol as unknown as Record<string, unknown>),
    onlink: ((m.data.flags?.__unknown ?? 0) & RTNH_F_ONLINK) !== 0,
    metric: m.attrs.priority ?? 0,
    unicast: numeric(m.data.type, rt.RouteType as unknown as Record<string, unknown>) === RTN_UNICAST,
  };
  const gateway = ipText(m.attrs.gateway);
  if (gateway !== undefined) route.gateway = gateway;
  if (m.attrs.oif !== undefined) route.ifindex = m.attrs.oif;
  return route;
}

export function decodeNeighbour(m: rt.NeighborMessage): KernelNeighbour | undefined {
  const family = familyOf(m.data.family);
  const ip = ipText(m.attrs.dst);
  if (family === undefined || ip === undefined || m.data.ifindex === undefined) return undefined;
  const n: KernelNeighbour = { ifindex: m.data.ifindex, family, ip, permanent: m.data.state?.permanent === true };
  if (m.attrs.lladdr !== undefined && m.attrs.lladdr.length === 6) n.mac = formatMac(m.attrs.lladdr);
  return n;
}

export function decodeFdb(m: rt.NeighborMessage): KernelFdb | undefined {
  if (m.data.family !== AF_BRIDGE || m.data.ifindex === undefined || m.attrs.lladdr === undefined || m.attrs.lladdr.length !== 6) return undefined;
  const f: KernelFdb = { ifindex: m.data.ifindex, mac: formatMac(m.attrs.lladdr), permanent: m.data.state?.permanent === true };
  const dst = ipText(m.attrs.dst);
  if (dst !== undefined) f.dst = dst;
  return f;
}

export function decodeRule(m: rt.RuleMessage): KernelRule | undefined {
  const family = familyOf(m.data.family);
  if (family === undefined) return undefined;
  const rule: KernelRule = {
    family,
    priority: m.attrs.priority ?? 0,
    table: m.attrs.table ?? m.data.table ?? 0,
    srcLen: m.data.srcLen ?? 0,
    dstLen: m.data.dstLen ?? 0,
    protocol: m.attrs.protocol ?? 0,
  };
  const src = ipText(m.attrs.src);
  const dst = ipText(m.attrs.dst);
  if (src !== undefined) rule.src = src;
  if (dst !== undefined) rule.dst = dst;
  if (m.attrs.fwmark !== undefined) rule.fwmark = m.attrs.fwmark;
  return rule;
}

const TRACKED = new Set<number>([RTM.NEWLINK, RTM.DELLINK, RTM.NEWADDR, RTM.DELADDR, RTM.NEWROUTE, RTM.DELROUTE, RTM.NEWNEIGH, RTM.DELNEIGH, RTM.NEWRULE, RTM.DELRULE]);

/**
 * A notification as a kernel event; undefined for message types and families lashup ignores.
 * Throws (the package's parse error) on a malformed message of a tracked type.
 */
export function decodeEvent(type: number, payload: Buffer): KernelEvent | undefined {
  if (!TRACKED.has(type)) return undefined;
  const m = rt.parseMessage(type as rt.MessageType, payload);
  switch (m.kind) {
    case 'link': {
      const link = decodeLink(m);
      return link === undefined ? undefined : { type: 'link', deleted: type === RTM.DELLINK, link };
    }
    case 'address': {
      const addr = decodeAddress(m);
      return addr === undefined ? undefined : { type: 'addr', deleted: type === RTM.DELADDR, addr };
    }
    case 'route': {
      const route = decodeRoute(m);
      return route === undefined ? undefined : { type: 'route', deleted: type === RTM.DELROUTE, route };
    }
    case 'neighbor': {
      if (m.data.family === AF_BRIDGE) {
        const fdb = decodeFdb(m);
        return fdb === undefined ? undefined : { type: 'fdb', deleted: type === RTM.DELNEIGH, fdb };
      }
      const neigh = decodeNeighbour(m);
      return neigh === undefined ? undefined : { type: 'neigh', deleted: type === RTM.DELNEIGH, neigh };
    }
    case 'rule': {
      const rule = decodeRule(m);
      return rule === undefined ? undefined : { type: 'rule', deleted: type === RTM.DELRULE, rule };
    }
    default:
      return undefined;
  }
}

/** Writes an address's bytes at `offset`; returns the byte count (4 or 16), or -1 when malformed. */
function writeIp(buf: Buffer, offset: number, text: string): number {
  if (text.includes(':')) {
    const ip = parseIp(text);
    if (ip === undefined) return -1;
    buf.set(ip.bytes, offset);
    return 16;
  }
  // Canonical dotted quads only (the desired state is normalized): a hand loop, because this
  // runs for every route, neighbour and FDB entry of a full program.
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || value > 255 || part > 3) return -1;
      buf[offset + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      value = value * 10 + (c - 48);
      digits++;
    } else return -1;
  }
  return part === 4 ? 4 : -1;
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function writeMac(buf: Buffer, offset: number, text: string): boolean {
  if (text.length !== 17) return false;
  for (let i = 0; i < 6; i++) {
    const hi = hex(text.charCodeAt(i * 3));
    const lo = hex(text.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 && text.charCodeAt(i * 3 + 2) !== 58)) return false;
    buf[offset + i] = (hi << 4) | lo;
  }
  return true;
}

/** Attribute header + payload written by `body` (which returns the payload length or -1); returns the padded size or -1. */
function attr(buf: Buffer, offset: number, type: number, body: (at: number) => number): number {
  const len = body(offset + 4);
  if (len < 0) return -1;
  buf.writeUInt16LE(4 + len, offset);
  buf.writeUInt16LE(type, offset + 2);
  const padded = (4 + len + 3) & ~3;
  buf.fill(0, offset + 4 + len, offset + padded);
  return padded;
}

function u32Attr(buf: Buffer, offset: number, type: number, value: number): number {
  buf.writeUInt16LE(8, offset);
  buf.writeUInt16LE(type, offset + 2);
  buf.writeUInt32LE(value >>> 0, offset + 4);
  return 8;
}

/** The most bytes `encodeHotInto` writes for one operation. */
export const HOT_MAX_BYTES = 128;

/**
 * Writes the whole netlink message of a route, neighbour or FDB operation (the operations a full
 * program consists of) straight into `buf` at `offset`, without the package's attribute streams:
 * a 10,000-agent program is 30,000 of these and the general path's small buffers cost more CPU
 * and garbage collection than the kernel's own work. Returns the bytes written (padded), 0 when
 * `op` is not one of these kinds (use `encodeOp` and `frame`), or -1 when it is malformed.
 * Produces the same bytes as `frame(encodeOp(op), seq, port)` with `extraFlags` added.
 */
export function encodeHotInto(op: KernelOp, buf: Buffer, offset: number, seq: number, port: number, extraFlags: number): number {
  let type: number;
  let flags: number;
  let o = offset + 16;
  switch (op.op) {
    case 'route.replace':
    case 'route.delete': {
      const r = op.route;
      const del = op.op === 'route.delete';
      type = del ? RTM.DELROUTE : RTM.NEWROUTE;
      flags = del ? 0 : NLM_F.CREATE | NLM_F.REPLACE;
      buf[o] = afOf(r.family);
      buf[o + 1] = r.prefixLen;
      buf[o + 2] = 0;
      buf[o + 3] = 0;
      buf[o + 4] = r.table > 255 ? 252 : r.table;
      buf[o + 5] = r.protocol;
      buf[o + 6] = 0;
      buf[o + 7] = del ? 0 : RTN_UNICAST;
      buf.writeUInt32LE(r.onlink && !del ? RTNH_F_ONLINK : 0, o + 8);
      o += 12;
      if (r.prefixLen > 0) {
        const n = attr(buf, o, RTA_DST, (at) => writeIp(buf, at, r.dst));
        if (n < 0) return -1;
        o += n;
      }
      // Attribute order of the package's formatter (by type), so both paths give equal bytes.
      if (!del && r.ifindex !== undefined) o += u32Attr(buf, o, RTA_OIF, r.ifindex);
      if (!del && r.gateway !== undefined) {
        const gateway = r.gateway;
        const n = attr(buf, o, RTA_GATEWAY, (at) => writeIp(buf, at, gateway));
        if (n < 0) return -1;
        o += n;
      }
      o += u32Attr(buf, o, RTA_PRIORITY, r.metric);
      if (r.table > 255) o += u32Attr(buf, o, RTA_TABLE, r.table);
      break;
    }
    case 'neigh.replace':
    case 'neigh.delete':
    case 'fdb.replace':
    case 'fdb.delete': {
      const del = op.op === 'neigh.delete' || op.op === 'fdb.delete';
      type = del ? RTM.DELNEIGH : RTM.NEWNEIGH;
      flags = del ? 0 : NLM_F.CREATE | NLM_F.REPLACE;
      const fdb = op.op === 'fdb.replace' || op.op === 'fdb.delete';
      const ifindex = fdb ? op.fdb.ifindex : (op as { neigh: KernelNeighbour }).neigh.ifindex;
      const permanent = fdb ? op.fdb.permanent : (op as { neigh: KernelNeighbour }).neigh.permanent;
      buf[o] = fdb ? AF_BRIDGE : afOf((op as { neigh: KernelNeighbour }).neigh.family);
      buf[o + 1] = 0;
      buf.writeUInt16LE(0, o + 2);
      buf.writeInt32LE(ifindex, o + 4);
      buf.writeUInt16LE(permanent ? NUD_PERMANENT : 0, o + 8);
      buf[o + 10] = fdb ? NTF_SELF : 0;
      buf[o + 11] = 0;
      o += 12;
      const ip = fdb ? op.fdb.dst : (op as { neigh: KernelNeighbour }).neigh.ip;
      const mac = fdb ? op.fdb.mac : del ? undefined : (op as { neigh: KernelNeighbour }).neigh.mac;
      const attrs: [number, (at: number) => number][] = [];
      const dst = (at: number): number => writeIp(buf, at, ip as string);
      const ll = (at: number): number => (writeMac(buf, at, mac as string) ? 6 : -1);
      // Same attribute order as the package's formatter: NDA_DST before NDA_LLADDR.
      if (ip !== undefined) attrs.push([NDA_DST, dst]);
      if (mac !== undefined) attrs.push([NDA_LLADDR, ll]);
      for (const [t, body] of attrs) {
        const n = attr(buf, o, t, body);
        if (n < 0) return -1;
        o += n;
      }
      break;
    }
    default:
      return 0;
  }
  const length = o - offset;
  buf.writeUInt32LE(length, offset);
  buf.writeUInt16LE(type, offset + 4);
  buf.writeUInt16LE(flags | NLM_F.REQUEST | extraFlags, offset + 6);
  buf.writeUInt32LE(seq >>> 0, offset + 8);
  buf.writeUInt32LE(port >>> 0, offset + 12);
  return length;
}
