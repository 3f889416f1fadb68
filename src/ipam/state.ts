/**
 * The allocation state machine, replicated by Raft on the masters: per-agent subnets (with their
 * Mesos and Docker halves), VTEP addresses and MACs, never given to two agents.
 *
 * Deterministic (every replica applies the same commands to the same state and gets the same
 * answers): allocations take the lowest free block or address, scanning in order.
 *
 * Commands (msgpack): [1, agent] allocate (idempotent: an agent keeps what it has and gets the
 * networks it lacks); [2, agent] release; [3, config] set the overlay configuration;
 * [4, [vip, ...]] give each named VIP (`<name>.<framework>`) an address from the VIP range
 * (idempotent: a VIP keeps its address); [5, [vip, ...]] free them (the leading master decides
 * when: a grace period after the last backend left; see src/vips/assigner.ts). Results
 * are [true, value] or [false, {code, message, details}]: a refused allocation is a result,
 * not a failure of the log.
 */
import { Packr, Unpackr } from 'msgpackr';
import { addressAt, cidrSize, familyBits, formatAddress, formatCidr, subBlock, subBlockCount, type Cidr } from '../common/index.js';
import { vtepMac } from '../vxlan/index.js';
import { validateOverlayConfig, type NetworkSpec, type OverlayConfig, type OverlaySpec } from './config.js';
import { IpamError, IpamErrorCode } from './errors.js';

export interface NetworkLease {
  /** The agent's IPv4 block, its halves and their gateways (absent for IPv6-only networks). */
  subnet?: string;
  mesos?: string;
  docker?: string;
  mesosGateway?: string;
  dockerGateway?: string;
  subnet6?: string;
  mesos6?: string;
  docker6?: string;
  mesosGateway6?: string;
  dockerGateway6?: string;
}

export interface Lease {
  agent: string;
  /**
   * The agent's identity, pinned by the masters when it first asked for this lease: the libp2p
   * peer id of the authenticated connection the request came on. Rows the agent owns in the
   * store must carry its signature (keyspace/signed-rows.ts). Absent on leases allocated
   * before identities were pinned, until the agent asks again.
   */
  peerId?: string;
  vtepIp: string;
  vtepIp6?: string;
  vtepMac: string;
  networks: Record<string, NetworkLease>;
}

/** A lease's blocks in every network, IPv4 and IPv6 (the subnets its agent routes for). */
export function leaseBlocks(lease: Lease): string[] {
  return Object.values(lease.networks).flatMap((n) => [n.subnet, n.subnet6].filter((s): s is string => typeof s === 'string'));
}

export interface NetworkUsage {
  network: string;
  family: 4 | 6;
  /** Blocks handed out. */
  used: number;
  /** Blocks in the range. */
  total: number;
  agents: { agent: string; subnet: string }[];
}

/** `peerId`: the identity the request came from (pinned at the first allocation; see Lease.peerId). */
export type IpamCommand =
  | { op: 'allocate'; agent: string; peerId?: string }
  | { op: 'release'; agent: string }
  | { op: 'config'; config: OverlayConfig }
  | { op: 'vip-assign'; vips: string[] }
  | { op: 'vip-release'; vips: string[] };

/** A named VIP's addresses (the IPv6 one when the IPv6 range has room for its index). */
export interface VipAddress {
  ip: string;
  ip6?: string;
}

/** What a vip-assign gives: every asked VIP's addresses, and the ones the range had no room for. */
export interface VipAssignment {
  assigned: Record<string, VipAddress>;
  exhausted: string[];
}

/** A named VIP's key (`<name>.<framework>`): bounded text, so a command cannot carry megabytes. */
const VIP_KEY = /^[a-z0-9-]{1,63}\.[A-Za-z0-9._-]{1,63}$/;
const MAX_VIPS_PER_COMMAND = 4096;

interface AgentState {
  vtepIndex: number;
  peerId: string | undefined;
  networks: Map<string, { block4: number; block6: number }>;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeCommand(command: IpamCommand): Uint8Array {
  switch (command.op) {
    case 'allocate':
      return packr.pack(command.peerId === undefined ? [1, command.agent] : [1, command.agent, command.peerId]).slice();
    case 'release':
      return packr.pack([2, command.agent]).slice();
    case 'config':
      return packr.pack([3, command.config]).slice();
    case 'vip-assign':
      return packr.pack([4, command.vips]).slice();
    case 'vip-release':
      return packr.pack([5, command.vips]).slice();
  }
}

export function decodeCommand(bytes: Uint8Array): IpamCommand {
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch (err) {
    throw new IpamError(IpamErrorCode.Decode, `an ipam command is not valid msgpack: ${(err as Error).message}`, {});
  }
  if (Array.isArray(raw) && raw.length === 2 && (raw[0] === 1 || raw[0] === 2) && typeof raw[1] === 'string' && raw[1].length > 0 && raw[1].length <= 256) {
    return { op: raw[0] === 1 ? 'allocate' : 'release', agent: raw[1] };
  }
  // Allocate with the requester's identity (logs written before identities were pinned hold the short form).
  if (
    Array.isArray(raw) &&
    raw.length === 3 &&
    raw[0] === 1 &&
    typeof raw[1] === 'string' &&
    raw[1].length > 0 &&
    raw[1].length <= 256 &&
    typeof raw[2] === 'string' &&
    raw[2].length > 0 &&
    raw[2].length <= 256
  ) {
    return { op: 'allocate', agent: raw[1], peerId: raw[2] };
  }
  if (Array.isArray(raw) && raw.length === 2 && raw[0] === 3 && raw[1] !== null && typeof raw[1] === 'object') return { op: 'config', config: raw[1] as OverlayConfig };
  if (
    Array.isArray(raw) &&
    raw.length === 2 &&
    (raw[0] === 4 || raw[0] === 5) &&
    Array.isArray(raw[1]) &&
    raw[1].length <= MAX_VIPS_PER_COMMAND &&
    raw[1].every((k) => typeof k === 'string' && VIP_KEY.test(k))
  ) {
    return { op: raw[0] === 4 ? 'vip-assign' : 'vip-release', vips: raw[1] as string[] };
  }
  throw new IpamError(IpamErrorCode.Decode, 'an ipam command must be [1, agent, peerId?], [2, agent], [3, config], [4, [vip...]] or [5, [vip...]]', {});
}

export type IpamResult = { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; details: Record<string, unknown> } };

export function encodeResult(result: IpamResult): Uint8Array {
  return packr.pack(result.ok ? [true, result.value ?? null] : [false, result.error]).slice();
}

export function decodeResult(bytes: Uint8Array): IpamResult {
  const raw = unpackr.unpack(bytes) as unknown[];
  if (!Array.isArray(raw) || raw.length !== 2) throw new IpamError(IpamErrorCode.Decode, 'an ipam result must be [ok, value]', {});
  return raw[0] === true ? { ok: true, value: raw[1] } : { ok: false, error: raw[1] as { code: string; message: string; details: Record<string, unknown> } };
}

/** Lowest index in [from, limit) not in `used`, or -1. */
function lowestFree(used: Set<number>, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (!used.has(i)) return i;
  return -1;
}

export class IpamState {
  private spec: OverlaySpec | undefined;
  private readonly agents = new Map<string, AgentState>();
  /** Per network name: used IPv4 and IPv6 block indexes. */
  private readonly used4 = new Map<string, Set<number>>();
  private readonly used6 = new Map<string, Set<number>>();
  private readonly usedVtep = new Set<number>();
  /** Named VIPs (`<name>.<framework>`) and their address index in the VIP ranges. */
  private readonly vips = new Map<string, number>();
  private readonly usedVip = new Set<number>();

  get config(): OverlayConfig | undefined {
    return this.spec?.config;
  }

  get agentCount(): number {
    return this.agents.size;
  }

  /** Applies a command; deterministic. Returns the encoded result. */
  apply(commandBytes: Uint8Array): Uint8Array {
    let command: IpamCommand;
    try {
      command = decodeCommand(commandBytes);
    } catch (err) {
      return encodeResult(this.failure(err));
    }
    return encodeResult(this.execute(command));
  }

  execute(command: IpamCommand): IpamResult {
    try {
      switch (command.op) {
        case 'allocate':
          return { ok: true, value: this.allocate(command.agent, command.peerId) };
        case 'release':
          return { ok: true, value: this.release(command.agent) };
        case 'config':
          this.setConfig(command.config);
          return { ok: true, value: null };
        case 'vip-assign':
          return { ok: true, value: this.assignVips(command.vips) };
        case 'vip-release':
          return { ok: true, value: this.releaseVips(command.vips) };
      }
    } catch (err) {
      return this.failure(err);
    }
  }

  private failure(err: unknown): IpamResult {
    if (err instanceof IpamError) return { ok: false, error: { code: err.code, message: err.message, details: { ...err.details } } };
    throw err;
  }

  setConfig(config: OverlayConfig): void {
    const spec = validateOverlayConfig(config);
    // A network's ranges cannot change under existing allocations (they would move).
    if (this.spec !== undefined) {
      for (const old of this.spec.networks) {
        const next = spec.networks.find((n) => n.name === old.name);
        const inUse = (this.used4.get(old.name)?.size ?? 0) + (this.used6.get(old.name)?.size ?? 0) > 0;
        if (!inUse) continue;
        if (next === undefined || !sameRanges(old, next)) {
          throw new IpamError(
            IpamErrorCode.InvalidConfig,
            `network ${old.name} has allocations; its subnet and prefix cannot change or disappear (release its agents first, or disable it with enabled: false)`,
            { network: old.name },
          );
        }
      }
      if (this.usedVip.size > 0 && (formatCidr(this.spec.vip) !== formatCidr(spec.vip) || formatCidr(this.spec.vip6) !== formatCidr(spec.vip6))) {
        throw new IpamError(IpamErrorCode.InvalidConfig, 'the VIP ranges (vipSubnet, vipSubnet6) cannot change while named VIPs hold addresses in them', {});
      }
      if (this.usedVtep.size > 0 && (formatCidr(this.spec.vtep) !== formatCidr(spec.vtep) || this.spec.config.vtepMacOui !== spec.config.vtepMacOui)) {
        throw new IpamError(IpamErrorCode.InvalidConfig, 'the VTEP subnet and MAC OUI cannot change while agents hold VTEP addresses', {});
      }
    }
    this.spec = spec;
  }

  private requireSpec(): OverlaySpec {
    if (this.spec === undefined) throw new IpamError(IpamErrorCode.NotConfigured, 'no overlay configuration has been committed yet; the masters publish it once a leader is elected', {});
    return this.spec;
  }

  /**
   * Allocates (or completes) `agent`'s lease. With `peerId`, the first allocation pins it (an
   * older lease without one is pinned by its next request) and a request from another identity
   * is refused: otherwise any member could ask for another agent's lease and be handed its
   * addresses, and sign rows as that agent. Releasing the agent unpins it.
   */
  allocate(agent: string, peerId?: string): Lease {
    const spec = this.requireSpec();
    let state = this.agents.get(agent);
    const created = state === undefined;
    if (state !== undefined && peerId !== undefined && state.peerId !== undefined && state.peerId !== peerId) {
      throw new IpamError(
        IpamErrorCode.IdentityMismatch,
        `agent ${agent} is pinned to identity ${state.peerId}; this request came from ${peerId}. An agent that lost its data directory (and peer key) gets its lease back only after an operator releases the old one`,
        { agent, pinned: state.peerId, presented: peerId },
      );
    }
    if (state === undefined) {
      const limit = Number(cidrSize(spec.vtep)) - 1; // the last address is the IPv4 broadcast
      const index = lowestFree(this.usedVtep, 1, limit);
      if (index < 0) {
        throw new IpamError(IpamErrorCode.Exhausted, `VTEP subnet ${formatCidr(spec.vtep)} is exhausted: ${this.usedVtep.size} of ${limit - 1} addresses in use`, {
          network: 'vtep',
          used: this.usedVtep.size,
          total: limit - 1,
        });
      }
      state = { vtepIndex: index, peerId, networks: new Map() };
    }
    const additions: [string, { block4: number; block6: number }][] = [];
    for (const net of spec.networks) {
      if (!net.enabled || state.networks.has(net.name)) continue;
      additions.push([net.name, { block4: this.reserveBlock(net, 4), block6: this.reserveBlock(net, 6) }]);
    }
    // Commit only when everything fitted: a failed allocation leaves no half-made lease.
    if (created) {
      this.usedVtep.add(state.vtepIndex);
      this.agents.set(agent, state);
    }
    if (state.peerId === undefined && peerId !== undefined) state.peerId = peerId;
    for (const [name, blocks] of additions) {
      state.networks.set(name, blocks);
      if (blocks.block4 >= 0) setOf(this.used4, name).add(blocks.block4);
      if (blocks.block6 >= 0) setOf(this.used6, name).add(blocks.block6);
    }
    return this.leaseOf(agent, state, spec);
  }

  /** The lowest free block of `net` for `family`, or -1 if the network has no such range. */
  private reserveBlock(net: NetworkSpec, family: 4 | 6): number {
    const range = family === 4 ? net.subnet : net.subnet6;
    if (range === undefined) return -1;
    const prefix = family === 4 ? net.prefix : net.prefix6;
    const used = setOf(family === 4 ? this.used4 : this.used6, net.name);
    const total = subBlockCount(range, prefix);
    const index = lowestFree(used, 0, total);
    if (index < 0) {
      throw new IpamError(IpamErrorCode.Exhausted, `network ${net.name} is exhausted: ${used.size} of ${total} /${prefix} blocks of ${formatCidr(range)} are in use`, {
        network: net.name,
        used: used.size,
        total,
        family,
      });
    }
    return index;
  }

  release(agent: string): boolean {
    const state = this.agents.get(agent);
    if (state === undefined) return false;
    this.usedVtep.delete(state.vtepIndex);
    for (const [name, blocks] of state.networks) {
      if (blocks.block4 >= 0) this.used4.get(name)?.delete(blocks.block4);
      if (blocks.block6 >= 0) this.used6.get(name)?.delete(blocks.block6);
    }
    this.agents.delete(agent);
    return true;
  }

  /**
   * Gives each of `keys` an address (a VIP that has one keeps it): the lowest free index of the
   * VIP range, skipping its first and last address. The IPv6 address has the same index.
   */
  assignVips(keys: readonly string[]): VipAssignment {
    const spec = this.requireSpec();
    const limit = Number(cidrSize(spec.vip)) - 1;
    const out: VipAssignment = { assigned: {}, exhausted: [] };
    for (const key of keys) {
      let index = this.vips.get(key);
      if (index === undefined) {
        const free = lowestFree(this.usedVip, 1, limit);
        if (free < 0) {
          out.exhausted.push(key);
          continue;
        }
        index = free;
        this.vips.set(key, index);
        this.usedVip.add(index);
      }
      out.assigned[key] = this.vipAddress(spec, index);
    }
    return out;
  }

  /** Frees the addresses of `keys`; returns the keys that held one. */
  releaseVips(keys: readonly string[]): string[] {
    const freed: string[] = [];
    for (const key of keys) {
      const index = this.vips.get(key);
      if (index === undefined) continue;
      this.vips.delete(key);
      this.usedVip.delete(index);
      freed.push(key);
    }
    return freed;
  }

  /** Every named VIP's addresses, by key. */
  vipTable(): Record<string, VipAddress> {
    const spec = this.spec;
    if (spec === undefined) return {};
    const out: Record<string, VipAddress> = {};
    for (const key of [...this.vips.keys()].sort()) out[key] = this.vipAddress(spec, this.vips.get(key) as number);
    return out;
  }

  /** Addresses in use and room in the IPv4 VIP range. */
  vipUsage(): { used: number; total: number } {
    return { used: this.usedVip.size, total: this.spec === undefined ? 0 : Number(cidrSize(this.spec.vip)) - 2 };
  }

  private vipAddress(spec: OverlaySpec, index: number): VipAddress {
    const ip = formatAddress(addressAt(spec.vip, index), 4);
    return BigInt(index) < cidrSize(spec.vip6) - 1n ? { ip, ip6: formatAddress(addressAt(spec.vip6, index), 6) } : { ip };
  }

  lease(agent: string): Lease | undefined {
    const state = this.agents.get(agent);
    return state === undefined || this.spec === undefined ? undefined : this.leaseOf(agent, state, this.spec);
  }

  leases(): Lease[] {
    const spec = this.spec;
    if (spec === undefined) return [];
    return [...this.agents].map(([agent, state]) => this.leaseOf(agent, state, spec)).sort((a, b) => (a.agent < b.agent ? -1 : 1));
  }

  usage(): NetworkUsage[] {
    const spec = this.spec;
    if (spec === undefined) return [];
    const out: NetworkUsage[] = [];
    for (const net of spec.networks) {
      for (const family of [4, 6] as const) {
        const range = family === 4 ? net.subnet : net.subnet6;
        if (range === undefined) continue;
        const prefix = family === 4 ? net.prefix : net.prefix6;
        const agents: { agent: string; subnet: string }[] = [];
        for (const [agent, state] of this.agents) {
          const blocks = state.networks.get(net.name);
          const index = family === 4 ? blocks?.block4 : blocks?.block6;
          if (index !== undefined && index >= 0) agents.push({ agent, subnet: formatCidr(subBlock(range, prefix, index)) });
        }
        out.push({ network: net.name, family, used: agents.length, total: subBlockCount(range, prefix), agents: agents.sort((a, b) => (a.agent < b.agent ? -1 : 1)) });
      }
    }
    return out;
  }

  private leaseOf(agent: string, state: AgentState, spec: OverlaySpec): Lease {
    const vtepValue = addressAt(spec.vtep, state.vtepIndex);
    const mac = vtepMac(formatAddress(vtepValue, 4), spec.config.vtepMacOui);
    const networks: Record<string, NetworkLease> = {};
    for (const net of spec.networks) {
      const blocks = state.networks.get(net.name);
      if (blocks === undefined) continue;
      const lease: NetworkLease = {};
      if (net.subnet !== undefined && blocks.block4 >= 0) Object.assign(lease, halves(subBlock(net.subnet, net.prefix, blocks.block4), ''));
      if (net.subnet6 !== undefined && blocks.block6 >= 0) Object.assign(lease, halves(subBlock(net.subnet6, net.prefix6, blocks.block6), '6'));
      networks[net.name] = lease;
    }
    return {
      agent,
      ...(state.peerId === undefined ? {} : { peerId: state.peerId }),
      vtepIp: formatAddress(vtepValue, 4),
      ...(spec.vtep6 === undefined ? {} : { vtepIp6: formatAddress(addressAt(spec.vtep6, state.vtepIndex), 6) }),
      vtepMac: mac,
      networks,
    };
  }

  snapshot(): Uint8Array {
    return packr
      .pack({
        config: this.spec?.config ?? null,
        agents: [...this.agents].map(([agent, s]) => [agent, s.vtepIndex, [...s.networks].map(([name, b]) => [name, b.block4, b.block6]), ...(s.peerId === undefined ? [] : [s.peerId])]),
        vips: [...this.vips],
      })
      .slice();
  }

  restore(data: Uint8Array): void {
    // The fourth item of an agent (its pinned identity) is absent in snapshots from before pinning.
    // `vips` is absent in snapshots from before named VIPs.
    const raw = unpackr.unpack(data) as { config: OverlayConfig | null; agents: [string, number, [string, number, number][], string?][]; vips?: [string, number][] };
    this.agents.clear();
    this.vips.clear();
    this.usedVip.clear();
    for (const [key, index] of raw.vips ?? []) {
      this.vips.set(key, index);
      this.usedVip.add(index);
    }
    this.used4.clear();
    this.used6.clear();
    this.usedVtep.clear();
    this.spec = raw.config === null ? undefined : validateOverlayConfig(raw.config);
    for (const [agent, vtepIndex, nets, peerId] of raw.agents) {
      const state: AgentState = { vtepIndex, peerId: typeof peerId === 'string' ? peerId : undefined, networks: new Map() };
      this.usedVtep.add(vtepIndex);
      for (const [name, block4, block6] of nets) {
        state.networks.set(name, { block4, block6 });
        if (block4 >= 0) setOf(this.used4, name).add(block4);
        if (block6 >= 0) setOf(this.used6, name).add(block6);
      }
      this.agents.set(agent, state);
    }
  }
}

function setOf(map: Map<string, Set<number>>, key: string): Set<number> {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  return set;
}

function sameRanges(a: NetworkSpec, b: NetworkSpec): boolean {
  const text = (c: Cidr | undefined): string => (c === undefined ? '' : formatCidr(c));
  return text(a.subnet) === text(b.subnet) && a.prefix === b.prefix && text(a.subnet6) === text(b.subnet6) && a.prefix6 === b.prefix6;
}

/** The block's halves (Mesos lower, Docker upper) and their gateways (first host of each). */
function halves(block: Cidr, suffix: '' | '6'): Record<string, string> {
  const half = block.prefix + 1;
  const lower: Cidr = { family: block.family, base: block.base, prefix: half };
  const upper: Cidr = { family: block.family, base: block.base + (1n << BigInt(familyBits(block.family) - half)), prefix: half };
  return {
    [`subnet${suffix}`]: formatCidr(block),
    [`mesos${suffix}`]: formatCidr(lower),
    [`docker${suffix}`]: formatCidr(upper),
    [`mesosGateway${suffix}`]: formatAddress(lower.base + 1n, block.family),
    [`dockerGateway${suffix}`]: formatAddress(upper.base + 1n, block.family),
  };
}
