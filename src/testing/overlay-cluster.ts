/**
 * The daemon's shell on virtual time: masters and agents, each the real node runtime
 * (membership, store, anti-entropy, peers, the Raft allocator or the lease client) over the
 * simulated network (`SimNodeNetwork`, simulated SWIM packets), every agent with the real
 * overlay agent and reconciler programming a `FakeKernel`, persistence on in-memory disks. A run
 * is deterministic by seed; partitions, crashes and releases are the simulator's and the
 * allocator's own.
 *
 * Promises (the reconciler's kernel calls) settle between simulator steps: `run` advances the
 * virtual clock in small steps and lets pending promise callbacks run after each.
 */
import { FakeKernel } from '../dataplane/fake-kernel.js';
import { LASHUP_ROUTE_PROTOCOL, Reconciler } from '../dataplane/reconciler.js';
import { LashupNode } from '../daemon/node.js';
import { OverlayAgent } from '../daemon/overlay-agent.js';
import { DEFAULT_OVERLAY_CONFIG, type OverlayConfig } from '../ipam/config.js';
import { decodeResult, encodeCommand, type Lease } from '../ipam/state.js';
import { removeAgentEntries } from '../keyspace/entries.js';
import type { MembershipConfig } from '../membership/index.js';
import { createSimTransports } from '../net/memory.js';
import { SimNodeNetwork } from '../net/sim-node-network.js';
import { Simulation } from '../sim/index.js';
import { MemoryFs } from './memory-fs.js';

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** A peer id shaped like libp2p's (base58, 20+ characters), unique per index. */
function simPeerId(index: number): string {
  let n = index + 1;
  let digits = '';
  while (n > 0) {
    digits = BASE58[n % 58] + digits;
    n = Math.floor(n / 58);
  }
  return `12D3KooWSimPeer${digits.padStart(5, '1')}`;
}

function underlayOf(index: number): string {
  return `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${(index & 255) + 1}`;
}

/** A node's simulated address: libp2p-shaped (its SWIM address too). Masters hold the first indexes. */
function addressOf(index: number): string {
  return `/ip4/${underlayOf(index)}/tcp/62502/p2p/${simPeerId(index)}`;
}

export interface SimOverlayClusterOptions {
  seed: number | string;
  /** Masters m1..mN (default 3). */
  masters?: number;
  overlay?: OverlayConfig;
  /** Membership settings (default the `lan` profile). */
  membership?: Partial<MembershipConfig>;
  /** Agents' lease confirmation interval, ms (default 30,000). */
  leaseCheckIntervalMs?: number;
}

export interface SimClusterNode {
  readonly name: string;
  readonly role: 'master' | 'agent';
  readonly index: number;
  /** Simulated address: a libp2p-shaped multiaddr, also the SWIM address. */
  readonly address: string;
  readonly underlayIp: string;
  readonly disk: MemoryFs;
  node?: LashupNode;
  kernel?: FakeKernel;
  reconciler?: Reconciler;
  overlay?: OverlayAgent;
  up: boolean;
}

export class SimOverlayCluster {
  readonly sim: Simulation;
  readonly nodes = new Map<string, SimClusterNode>();
  private readonly masterNames: string[];
  /** The overlay configuration masters boot with (see `reconfigure`). */
  private overlay: OverlayConfig;
  private nextIndex = 0;

  constructor(private readonly options: SimOverlayClusterOptions) {
    this.sim = new Simulation({ seed: options.seed, network: { defaultLink: { latency: { kind: 'uniform', minMs: 1, maxMs: 3 } } } });
    this.overlay = options.overlay ?? (DEFAULT_OVERLAY_CONFIG as OverlayConfig);
    this.masterNames = Array.from({ length: options.masters ?? 3 }, (_, i) => `m${i + 1}`);
    for (const name of this.masterNames) this.add(name, 'master');
  }

  /** Adds and boots an agent (or master) named `name`. */
  add(name: string, role: 'master' | 'agent' = 'agent'): SimClusterNode {
    if (this.nodes.has(name)) throw new Error(`node ${name} exists`);
    const index = this.nextIndex++;
    const underlayIp = underlayOf(index);
    const entry: SimClusterNode = { name, role, index, address: addressOf(index), underlayIp, disk: new MemoryFs(), up: true };
    this.nodes.set(name, entry);
    this.sim.network.addHost(entry.address, (host) => {
      const { packets, streams } = createSimTransports(host);
      const network = new SimNodeNetwork(streams, simPeerId(index));
      const seeds = this.masterNames.map((_, i) => addressOf(i)).filter((a) => a !== entry.address);
      entry.node = LashupNode.withPorts(
        {
          name,
          dataDir: `/sim/${name}`,
          role,
          underlayIp,
          clusterKeys: [],
          label: 'sim',
          bindHost: underlayIp,
          advertiseHost: underlayIp,
          udpPort: 0,
          libp2pPort: 0,
          seeds,
          packetTransport: 'udp',
          membershipProfile: 'lan',
          ...(this.options.membership === undefined ? {} : { membership: this.options.membership }),
          masters: this.masterNames,
          overlay: this.overlay,
          fs: entry.disk,
          ...(this.options.leaseCheckIntervalMs === undefined ? {} : { leaseCheckIntervalMs: this.options.leaseCheckIntervalMs }),
        },
        { network, packets, clock: host.clock, rng: host.rng },
      );
      if (role !== 'agent') return;
      const node = entry.node;
      const kernel = entry.kernel ?? new FakeKernel();
      entry.kernel = kernel;
      const reconciler = new Reconciler({ kernel, clock: host.clock });
      void reconciler.start();
      entry.reconciler = reconciler;
      const agent = new OverlayAgent({
        name,
        underlayIp,
        kv: node.kv,
        reconciler,
        overlay: node.overlayConfig,
        clock: host.clock,
        onOwnEntryMissing: () => node.lease?.confirm(),
      });
      agent.start();
      entry.overlay = agent;
      node.onLease((lease) => agent.setLease(lease));
      node.onLeaseConfirmed(() => agent.republish());
      node.onLeaseLost(() => agent.leaseLost());
    });
    return entry;
  }

  /** Advances virtual time by `ms`, letting promise callbacks run every `stepMs`. */
  async run(ms: number, stepMs = 10): Promise<void> {
    for (let t = 0; t < ms; t += stepMs) {
      this.sim.runFor(Math.min(stepMs, ms - t));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Runs until `done()` holds, checking every `checkMs`; false when `maxMs` passed first. */
  async runUntil(done: () => boolean, maxMs: number, checkMs = 500): Promise<boolean> {
    for (let t = 0; t < maxMs; t += checkMs) {
      if (done()) return true;
      await this.run(checkMs);
    }
    return done();
  }

  get agents(): SimClusterNode[] {
    return [...this.nodes.values()].filter((n) => n.role === 'agent');
  }

  node(name: string): SimClusterNode {
    const n = this.nodes.get(name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  leaseOf(name: string): Lease | undefined {
    return this.node(name).node?.lease?.current;
  }

  /** The overlay routes (lashup's protocol) programmed in `name`'s fake kernel, as "dst/len". */
  routesOf(name: string): Set<string> {
    const kernel = this.node(name).kernel;
    return new Set((kernel?.state().routes ?? []).filter((r) => r.protocol === LASHUP_ROUTE_PROTOCOL).map((r) => `${r.dst}/${r.prefixLen}`));
  }

  /**
   * Missing routes: for every running agent `from` in `among`, the IPv4 subnets of the agents in
   * `to` (other than itself) that its kernel does not route, as "from -> to".
   */
  missingRoutes(among: readonly string[], to: readonly string[]): string[] {
    const missing: string[] = [];
    for (const from of among) {
      if (!this.node(from).up) continue;
      const routes = this.routesOf(from);
      for (const other of to) {
        if (other === from) continue;
        const subnet = this.leaseOf(other)?.networks['dcos']?.subnet;
        if (subnet === undefined || !routes.has(subnet)) missing.push(`${from} -> ${other}`);
      }
    }
    return missing;
  }

  /** Cuts the network into sides (node names); nodes on no side are cut from all. */
  partition(sides: readonly (readonly string[])[]): void {
    this.sim.network.partition(sides.map((side) => side.map((name) => this.node(name).address)));
  }

  heal(): void {
    this.sim.network.heal();
  }

  /** Crashes a node's host: its timers and connections die with it; its disk stays. */
  crash(name: string): void {
    const n = this.node(name);
    n.up = false;
    this.sim.network.crash(n.address);
  }

  /**
   * Restarts a node's process: its host crashes (timers, connections), its disk keeps what was
   * written (a process kill, not a power loss), and it boots again with the same identity.
   */
  restart(name: string): void {
    const n = this.node(name);
    n.overlay?.stop();
    n.disk.kill();
    this.sim.network.restart(n.address);
    n.up = true;
  }

  /** The operator's change of the overlay configuration: masters restart with it, one by one. */
  async reconfigure(overlay: OverlayConfig, gapMs = 5_000): Promise<void> {
    this.overlay = overlay;
    for (const m of this.masterNames) {
      this.restart(m);
      await this.run(gapMs);
    }
  }

  /**
   * Releases `agent` on the Raft leader and removes its overlay entries there, as
   * `lashup allocations release --force` does, running the simulation until the release is
   * committed; resolves with whether something was released.
   */
  async release(agent: string, maxMs = 30_000): Promise<boolean> {
    const leader = this.masterNames.map((m) => this.node(m)).find((m) => m.up && m.node?.allocator?.raft.role === 'leader');
    const allocator = leader?.node?.allocator;
    if (leader?.node === undefined || allocator === undefined) throw new Error('no Raft leader');
    const kv = leader.node.kv;
    const vtepIp = allocator.state.lease(agent)?.vtepIp;
    let outcome: { released: boolean } | { error: Error } | undefined;
    allocator.raft.propose(encodeCommand({ op: 'release', agent }), (error, result) => {
      if (error !== null) {
        outcome = { error };
        return;
      }
      const decoded = decodeResult(result as Uint8Array);
      if (!decoded.ok) {
        outcome = { error: new Error(decoded.error.message) };
        return;
      }
      if (vtepIp !== undefined) removeAgentEntries(kv, vtepIp);
      outcome = { released: decoded.value === true };
    });
    await this.runUntil(() => outcome !== undefined, maxMs, 50);
    if (outcome === undefined) throw new Error(`the release of ${agent} was not committed within ${maxMs} ms`);
    if ('error' in outcome) throw outcome.error;
    return outcome.released;
  }

  /** Stops every node (for test teardown). */
  async stop(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      n.up = false;
      n.overlay?.stop();
      await n.reconciler?.stop();
      await n.node?.kill();
    }
  }
}
