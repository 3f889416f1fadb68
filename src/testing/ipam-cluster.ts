/**
 * Masters running Raft with the allocation state machine on the simulated network, clients that
 * allocate through them, and a checker that watches every safety property as it happens:
 *
 * - at most one leader per term;
 * - every replica applies, at each index, the same entry (so no committed entry is ever lost
 *   or changed), and logs match wherever two replicas hold an entry of the same term;
 * - in no replica's state do two agents share a subnet, a VTEP IP or a VTEP MAC;
 * - every acknowledged allocation is what every replica holds for that agent.
 *
 * Masters persist to in-memory Raft storage kept outside the simulated host, so a restart
 * recovers exactly what a disk would hold. Violations are collected, not thrown, so a test can
 * report the seed and the first violation.
 */
import { hashString32, type Rng } from '../common/index.js';
import { createSimTransports } from '../net/index.js';
import { decodeRaftMessage, encodeRaftMessage, RaftError, RaftErrorCode, RaftNode, type RaftConfig, type StateMachine } from '../raft/index.js';
import { MemoryRaftStorage } from './memory-raft-storage.js';
import { Simulation, type LinkConfig } from '../sim/index.js';
import type { OverlayConfig } from '../ipam/config.js';
import { IpamErrorCode } from '../ipam/errors.js';
import { decodeCommand, decodeResult, encodeCommand, IpamState, type Lease } from '../ipam/state.js';

export interface IpamClusterOptions {
  seed: number | string;
  masters: number;
  overlay: OverlayConfig;
  raft?: Partial<RaftConfig>;
  link?: Partial<LinkConfig>;
}

interface Replica {
  ipam: IpamState;
  /** index -> hash of the applied entry (checked across replicas). */
  applied: Map<number, number>;
  owners: Map<string, string>;
}

function hashBytes(bytes: Uint8Array, term: number): number {
  let h = 0x811c9dc5 ^ term;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

export class IpamCluster {
  readonly sim: Simulation;
  readonly names: string[];
  readonly violations: string[] = [];
  private readonly storages = new Map<string, MemoryRaftStorage>();
  private readonly nodes = new Map<string, RaftNode>();
  private readonly replicas = new Map<string, Replica>();
  private readonly leaders = new Map<number, string>();
  /** index -> entry hash, as first applied anywhere. */
  private readonly committed = new Map<number, number>();
  /** agent -> acknowledged lease (JSON) and the index it was acknowledged at. */
  readonly acknowledged = new Map<string, { lease: string; index: number }>();
  /** Allocations the state machine refused (exhaustion), with the reason. */
  readonly refused: string[] = [];
  private readonly options: IpamClusterOptions;
  private readonly clientRng: Rng;

  constructor(options: IpamClusterOptions) {
    this.options = options;
    this.sim = new Simulation({ seed: options.seed, network: options.link === undefined ? {} : { defaultLink: options.link } });
    this.clientRng = this.sim.rng.fork('clients');
    this.names = Array.from({ length: options.masters }, (_, i) => `m${i}`);
    for (const name of this.names) {
      this.storages.set(name, new MemoryRaftStorage());
      this.sim.network.addHost(name, (host) => this.boot(name, host));
    }
  }

  private boot(name: string, host: import('../sim/index.js').SimHost): void {
    const { packets } = createSimTransports(host, { maxPacketBytes: 16 * 1024 * 1024 });
    const ipam = new IpamState();
    const replica: Replica = { ipam, applied: new Map(), owners: new Map() };
    this.replicas.set(name, replica);
    const machine: StateMachine = {
      apply: (command, index) => {
        const result = ipam.apply(command);
        this.checkApplied(name, replica, index, command);
        return result;
      },
      snapshot: () => ipam.snapshot(),
      restore: (data) => {
        ipam.restore(data);
        this.rebuildOwners(name, replica);
      },
    };
    const node: RaftNode = new RaftNode({
      id: name,
      voters: this.names,
      config: this.options.raft ?? {},
      storage: this.storages.get(name) as MemoryRaftStorage,
      stateMachine: machine,
      clock: host.clock,
      rng: host.rng.fork('raft'),
      send: (to, message) => packets.send(to, encodeRaftMessage(message)),
      onStateChange: ({ role, term }) => {
        if (role !== 'leader') return;
        const previous = this.leaders.get(term);
        if (previous !== undefined && previous !== name) this.violations.push(`two leaders in term ${term}: ${previous} and ${name}`);
        this.leaders.set(term, name);
        // The leader publishes the overlay configuration once.
        if (ipam.config === undefined) node.propose(encodeCommand({ op: 'config', config: this.options.overlay }), () => undefined);
      },
    });
    packets.onPacket((packet) => {
      try {
        node.receive(packet.from, decodeRaftMessage(packet.data));
      } catch (err) {
        if (!(err instanceof RaftError)) throw err;
      }
    });
    this.nodes.set(name, node);
    node.start();
  }

  /** Checks one applied command: the same entry everywhere at this index; the agent it touched. */
  private checkApplied(name: string, replica: Replica, index: number, command: Uint8Array): void {
    const hash = hashBytes(command, 0);
    replica.applied.set(index, hash);
    const first = this.committed.get(index);
    if (first === undefined) this.committed.set(index, hash);
    else if (first !== hash) this.violations.push(`${name} applied a different entry at index ${index} than another replica`);
    let decoded;
    try {
      decoded = decodeCommand(command);
    } catch {
      return;
    }
    if (decoded.op === 'config' || decoded.op === 'vip-assign' || decoded.op === 'vip-release') return;
    this.forgetOwner(replica, decoded.agent);
    const lease = replica.ipam.lease(decoded.agent);
    if (lease === undefined) return;
    this.claim(name, replica, lease);
    const ack = this.acknowledged.get(decoded.agent);
    if (ack !== undefined && JSON.stringify(lease) !== ack.lease) this.violations.push(`${name} holds a lease for ${decoded.agent} that differs from the acknowledged one`);
  }

  private keysOf(lease: Lease): string[] {
    const keys = [`vtep:${lease.vtepIp}`, `mac:${lease.vtepMac}`, ...(lease.vtepIp6 === undefined ? [] : [`vtep6:${lease.vtepIp6}`])];
    for (const n of Object.values(lease.networks)) {
      if (n.subnet !== undefined) keys.push(`net:${n.subnet}`);
      if (n.subnet6 !== undefined) keys.push(`net6:${n.subnet6}`);
    }
    return keys;
  }

  /** Records the agent's addresses; any already owned by another agent is a violation. */
  private claim(name: string, replica: Replica, lease: Lease): void {
    for (const key of this.keysOf(lease)) {
      const owner = replica.owners.get(key);
      if (owner !== undefined && owner !== lease.agent) this.violations.push(`${name}: ${key} given to both ${owner} and ${lease.agent}`);
      replica.owners.set(key, lease.agent);
    }
  }

  private forgetOwner(replica: Replica, agent: string): void {
    for (const [key, owner] of replica.owners) if (owner === agent) replica.owners.delete(key);
  }

  private rebuildOwners(name: string, replica: Replica): void {
    replica.owners.clear();
    for (const lease of replica.ipam.leases()) this.claim(name, replica, lease);
  }

  node(name: string): RaftNode {
    return this.nodes.get(name) as RaftNode;
  }

  replica(name: string): IpamState {
    return (this.replicas.get(name) as Replica).ipam;
  }

  leader(): string | undefined {
    let best: RaftNode | undefined;
    for (const name of this.names) {
      if (!this.sim.network.host(name).up) continue;
      const n = this.node(name);
      if (n.role === 'leader' && (best === undefined || n.term > best.term)) best = n;
    }
    return best?.id;
  }

  /** Checks that logs match wherever two up replicas hold an entry of the same term. */
  checkLogs(): void {
    const up = this.names.filter((n) => this.sim.network.host(n).up).map((n) => this.node(n));
    for (let i = 0; i < up.length; i++) {
      for (let j = i + 1; j < up.length; j++) {
        const a = up[i] as RaftNode;
        const b = up[j] as RaftNode;
        const hi = Math.min(a.lastIndex, b.lastIndex);
        const lo = Math.max(a.firstIndex, b.firstIndex);
        let matched = false;
        for (let k = hi; k >= lo; k--) {
          const ea = a.entryAt(k);
          const eb = b.entryAt(k);
          if (ea === undefined || eb === undefined) continue;
          if (matched && (ea.term !== eb.term || hashBytes(ea.command, 0) !== hashBytes(eb.command, 0))) {
            this.violations.push(`logs of ${a.id} and ${b.id} differ at ${k} below a matching entry`);
            return;
          }
          if (ea.term === eb.term) {
            if (hashBytes(ea.command, 0) !== hashBytes(eb.command, 0)) {
              this.violations.push(`logs of ${a.id} and ${b.id} hold different entries of term ${ea.term} at ${k}`);
              return;
            }
            matched = true;
          }
        }
      }
    }
  }

  /**
   * Allocates for `agent` as a client would: asks a master, follows "not leader" hints, retries
   * every 100 ms. `done` gets the lease (also recorded as acknowledged) or never runs if no
   * majority is reachable.
   */
  allocate(agent: string, done?: (lease: Lease, atMs: number) => void): void {
    let target = this.clientRng.pick(this.names);
    let generation = 0;
    let finished = false;
    const attempt = (): void => {
      // A request to a master that crashes is never answered: give up on it after 2 s, as an
      // RPC would time out, and ask again (allocation is idempotent).
      const mine = ++generation;
      this.sim.scheduler.after(2000, () => {
        if (generation === mine && !finished) {
          target = this.clientRng.pick(this.names);
          attempt();
        }
      });
      const host = this.sim.network.host(target);
      if (!host.up) {
        target = this.clientRng.pick(this.names);
        this.sim.scheduler.after(100, attempt);
        return;
      }
      this.node(target).propose(encodeCommand({ op: 'allocate', agent }), (error, result, index) => {
        if (generation !== mine || finished) return;
        if (error !== null) {
          const hint = error.code === RaftErrorCode.NotLeader ? (error.details['leader'] as string | undefined) : undefined;
          target = hint ?? this.clientRng.pick(this.names);
          this.sim.scheduler.after(hint === undefined ? 100 : 5, attempt);
          return;
        }
        const decoded = decodeResult(result as Uint8Array);
        if (!decoded.ok) {
          // Not configured yet: retry. Anything else (exhaustion) is final.
          if (decoded.error.code === IpamErrorCode.NotConfigured) this.sim.scheduler.after(100, attempt);
          else {
            finished = true;
            this.refused.push(`${agent}: ${decoded.error.message}`);
          }
          return;
        }
        const lease = decoded.value as Lease;
        const json = JSON.stringify(lease);
        const previous = this.acknowledged.get(agent);
        if (previous !== undefined && previous.lease !== json) this.violations.push(`agent ${agent} was acknowledged two different leases`);
        this.acknowledged.set(agent, { lease: json, index: index as number });
        finished = true;
        done?.(lease, this.sim.nowMs());
      });
    };
    attempt();
  }

  crash(name: string): void {
    this.sim.network.crash(name);
  }

  restart(name: string): void {
    this.sim.network.restart(name);
  }

  /** A stable hash of the committed allocations of a replica (for convergence checks). */
  stateHash(name: string): number {
    return hashString32(JSON.stringify(this.replica(name).leases()));
  }
}
