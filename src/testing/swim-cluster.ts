/**
 * A cluster of membership nodes on the simulated network: what the simulation tests and the
 * membership benchmark drive. Each host runs one `Membership` on the in-memory transports; a
 * restart boots a fresh instance (nothing survives but what the test keeps outside), joining
 * through the configured seeds.
 */
import { Simulation, type LinkConfig } from '../sim/index.js';
import { createSimTransports, type StreamTransport } from '../net/index.js';
import type { MembershipConfig } from '../membership/config.js';
import { MemberRegistry, type SeedSet } from '../membership/registry.js';
import { Membership, type MembershipEvent } from '../membership/swim.js';

export interface SwimClusterOptions {
  seed: number | string;
  config: MembershipConfig;
  /** Link behaviour between every pair of hosts. */
  link?: Partial<LinkConfig>;
}

export interface AddNodeOptions {
  /** Member name (default: the host address). Two hosts may claim one name to test conflicts. */
  name?: string;
  /** Seeds to join through at every boot (none: the node starts alone or seeded). */
  seeds?: readonly string[];
  /** Start already knowing these members (a converged cluster without join traffic); see seedSet(). */
  seededWith?: SeedSet;
  /** Encoded metadata. */
  meta?: Uint8Array;
  /** MembershipOptions.connectedPeers: the hosts this node counts as connected (default none). */
  connectedPeers?: () => string[];
  /** Wraps the node's stream transport (tests inject failures the simulated network has not got). */
  wrapStreams?: (streams: StreamTransport) => StreamTransport;
}

export type ClusterListener = (node: string, event: MembershipEvent, atMs: number) => void;

export class SwimCluster {
  readonly sim: Simulation;
  /** One registry for every node: interning keeps 10,000 simulated views in memory. */
  readonly registry = new MemberRegistry();
  private readonly instances = new Map<string, Membership>();
  private readonly listeners = new Set<ClusterListener>();
  private config: MembershipConfig;

  constructor(options: SwimClusterOptions) {
    this.config = options.config;
    this.sim = new Simulation({ seed: options.seed, network: options.link === undefined ? {} : { defaultLink: options.link } });
  }

  /** Members (named as their hosts) resolved once, to seed many nodes with. */
  seedSet(addresses: readonly string[]): SeedSet {
    return this.registry.seedSet(addresses.map((a) => ({ name: a, address: a })));
  }

  /** Config for nodes booted from now on. */
  setConfig(config: MembershipConfig): void {
    this.config = config;
  }

  /** Adds a host at `address` running one node, booted now and at every restart. */
  addNode(address: string, options: AddNodeOptions = {}): void {
    const name = options.name ?? address;
    this.sim.network.addHost(address, (host) => {
      const { packets, streams } = createSimTransports(host, { maxPacketBytes: this.config.maxPacketBytes });
      const node = new Membership({
        name,
        address,
        config: this.config,
        clock: host.clock,
        rng: host.rng.fork('membership'),
        packets,
        streams: options.wrapStreams === undefined ? streams : options.wrapStreams(streams),
        registry: this.registry,
        ...(options.meta === undefined ? {} : { meta: options.meta }),
        ...(options.connectedPeers === undefined ? {} : { connectedPeers: options.connectedPeers }),
      });
      node.on((event) => {
        const at = this.sim.nowMs();
        for (const listener of this.listeners) listener(address, event, at);
      });
      if (options.seededWith !== undefined && host.epoch === 0) {
        node.seedMembers(options.seededWith);
      }
      this.instances.set(address, node);
      node.start();
      if (options.seeds !== undefined && options.seeds.length > 0) node.join(options.seeds);
    });
  }

  /** The node running on host `address`. */
  node(address: string): Membership {
    const node = this.instances.get(address);
    if (node === undefined) throw new Error(`no node on host ${address}`);
    return node;
  }

  /** Host addresses (member names too, unless a node was given another name). */
  names(): string[] {
    return [...this.instances.keys()];
  }

  isUp(name: string): boolean {
    return this.sim.network.host(name).up;
  }

  onEvent(listener: ClusterListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Crashes a host: no goodbye, timers and streams die with it. */
  crash(name: string): void {
    this.sim.network.crash(name);
  }

  restart(name: string): void {
    this.sim.network.restart(name);
  }

  runFor(ms: number): void {
    this.sim.runFor(ms);
  }

  /** How `observer` sees `member` ('absent' when it does not know it). */
  view(observer: string, member: string): string {
    return this.node(observer).member(member)?.state ?? 'absent';
  }

  /** True when every up node sees every up node alive and every down node as dead or left. */
  converged(): boolean {
    const names = this.names();
    for (const a of names) {
      if (!this.isUp(a)) continue;
      for (const b of names) {
        const seen = this.view(a, b);
        if (this.isUp(b) ? seen !== 'alive' : seen !== 'dead' && seen !== 'left' && seen !== 'absent') return false;
      }
    }
    return true;
  }
}
