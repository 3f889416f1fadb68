/**
 * Per-container addresses from the agent's Mesos half of each network (pure: no I/O).
 *
 * An attachment is (container id, interface name); it gets the lowest free address of the
 * half that is neither the network address, the gateway nor (IPv4) the broadcast address. ADD
 * of an attachment that already has an address returns that address (runtimes retry), DEL of
 * an unknown one succeeds (the specification demands idempotent DEL), and `gc` keeps only the
 * attachments a runtime says are valid.
 */
import { cidrSize, formatAddress, parseAddress, parseCidr, type Cidr } from '../common/index.js';
import { CniCode, CniError, CniErrorCode } from './errors.js';

export interface NetworkRange {
  /** The Mesos half, e.g. 9.0.1.0/25. */
  subnet: string;
  /** Its gateway (the bridge address), e.g. 9.0.1.1. */
  gateway: string;
}

export interface Attachment {
  network: string;
  containerId: string;
  ifname: string;
  address: string;
  prefixLen: number;
  gateway: string;
  /** When it was allocated (ms since the epoch), for operators. */
  sinceMs: number;
  /** The container's network namespace path from CNI_NETNS, when given: how stale leases are found. */
  netns?: string;
  /** The task name the runtime gave (CNI args or CNI_ARGS), published for DNS. */
  task?: string;
  framework?: string;
  /** The VIPs the task declared with it (src/vips), published with the task. */
  vips?: string[];
}

export const attachmentKey = (network: string, containerId: string, ifname: string): string => `${network}/${containerId}/${ifname}`;

interface Parsed {
  cidr: Cidr;
  gateway: bigint;
  range: NetworkRange;
}

export class ContainerPool {
  private readonly attachments = new Map<string, Attachment>();
  private ranges = new Map<string, Parsed>();

  constructor(
    /** Agent name, for error messages. */
    private readonly agent: string,
    initial: Iterable<Attachment> = [],
  ) {
    for (const a of initial) this.attachments.set(attachmentKey(a.network, a.containerId, a.ifname), { ...a });
  }

  /** The ranges of the current lease. Attachments outside them stay until deleted (their containers still use them). */
  setRanges(ranges: Record<string, NetworkRange>): void {
    const next = new Map<string, Parsed>();
    for (const [network, range] of Object.entries(ranges)) {
      const cidr = parseCidr(range.subnet);
      const gateway = parseAddress(range.gateway);
      if (cidr === undefined || gateway === undefined || gateway.family !== cidr.family) continue;
      next.set(network, { cidr, gateway: gateway.value, range });
    }
    this.ranges = next;
  }

  networks(): string[] {
    return [...this.ranges.keys()];
  }

  /** Usable addresses of a network's half: all but network, gateway and (IPv4) broadcast. */
  capacity(network: string): number {
    const r = this.ranges.get(network);
    if (r === undefined) return 0;
    const size = Number(cidrSize(r.cidr));
    return Math.max(0, size - (r.cidr.family === 4 ? 3 : 2));
  }

  used(network: string): number {
    let n = 0;
    for (const a of this.attachments.values()) if (a.network === network) n++;
    return n;
  }

  get(network: string, containerId: string, ifname: string): Attachment | undefined {
    return this.attachments.get(attachmentKey(network, containerId, ifname));
  }

  list(): Attachment[] {
    return [...this.attachments.values()];
  }

  /** The attachment's address: the existing one, or the lowest free. Returns whether it is new. */
  add(network: string, containerId: string, ifname: string, nowMs: number, netns?: string, named?: { task: string; framework: string; vips?: string[] }): { attachment: Attachment; created: boolean } {
    const existing = this.get(network, containerId, ifname);
    if (existing !== undefined) return { attachment: existing, created: false };
    const r = this.ranges.get(network);
    if (r === undefined) {
      throw new CniError(
        CniErrorCode.UnknownNetwork,
        CniCode.InvalidConfig,
        `agent ${this.agent} has no lease for network ${JSON.stringify(network)}; leased: ${this.networks().join(', ') || 'none yet'}`,
        { network, agent: this.agent },
      );
    }
    const taken = new Set<bigint>();
    for (const a of this.attachments.values()) {
      const v = parseAddress(a.address);
      if (v !== undefined) taken.add(v.value);
    }
    const size = cidrSize(r.cidr);
    const last = r.cidr.family === 4 ? size - 2n : size - 1n;
    for (let offset = 1n; offset <= last; offset++) {
      const value = r.cidr.base + offset;
      if (value === r.gateway || taken.has(value)) continue;
      const attachment: Attachment = {
        network,
        containerId,
        ifname,
        address: formatAddress(value, r.cidr.family),
        prefixLen: r.cidr.prefix,
        gateway: r.range.gateway,
        sinceMs: nowMs,
        ...(netns === undefined ? {} : { netns }),
        ...(named === undefined ? {} : { task: named.task, framework: named.framework, ...(named.vips === undefined ? {} : { vips: [...named.vips] }) }),
      };
      this.attachments.set(attachmentKey(network, containerId, ifname), attachment);
      return { attachment, created: true };
    }
    const used = this.used(network);
    const total = this.capacity(network);
    throw new CniError(CniErrorCode.Exhausted, CniCode.TryAgainLater, `network ${network} on agent ${this.agent} has no free container address: ${used} of ${total} in use (${r.range.subnet})`, {
      network,
      agent: this.agent,
      used,
      total,
      subnet: r.range.subnet,
    });
  }

  /**
   * Puts attachments back exactly as they were: how a change that could not be made durable is
   * rolled back (a DEL, GC or sweep whose lease file write failed).
   */
  restore(attachments: Iterable<Attachment>): void {
    for (const a of attachments) this.attachments.set(attachmentKey(a.network, a.containerId, a.ifname), a);
  }

  /** Frees an attachment; false when there was none (still a success for DEL). */
  del(network: string, containerId: string, ifname: string): boolean {
    return this.attachments.delete(attachmentKey(network, containerId, ifname));
  }

  /**
   * Removes attachments whose network namespace is gone (`gone(path)` true) and that are older
   * than `graceMs` (a runtime may create the namespace file after calling ADD). Returns them.
   */
  sweep(gone: (netns: string) => boolean, nowMs: number, graceMs: number): Attachment[] {
    const removed: Attachment[] = [];
    for (const [key, a] of this.attachments) {
      if (a.netns === undefined || nowMs - a.sinceMs < graceMs || !gone(a.netns)) continue;
      this.attachments.delete(key);
      removed.push(a);
    }
    return removed;
  }

  /** Keeps only `valid` attachments (of `network`); returns the ones collected. */
  gc(network: string, valid: readonly { containerId: string; ifname: string }[]): Attachment[] {
    const keep = new Set(valid.map((v) => attachmentKey(network, v.containerId, v.ifname)));
    const removed: Attachment[] = [];
    for (const [key, a] of this.attachments) {
      if (a.network === network && !keep.has(key)) {
        this.attachments.delete(key);
        removed.push(a);
      }
    }
    return removed;
  }
}
