/**
 * Replicas of the store on the simulated network: what the kv simulation tests and the kv
 * benchmark drive. Each host runs a KvStore, anti-entropy over simulated streams, push of deltas
 * as packets (as gossipsub would: best effort), and persistence on an in-memory file system that
 * outlives the host, so a restart recovers from what was persisted, and a crash can lose what
 * was not fsynced.
 */
import { Simulation, type LinkConfig } from '../sim/index.js';
import { createSimTransports } from '../net/index.js';
import { AntiEntropy } from '../kv/anti-entropy.js';
import { kvConfig, type KvConfig } from '../kv/config.js';
import { MemoryFs } from './memory-fs.js';
import { KvPersistence, type FsyncPolicy, type RecoveryReport } from '../kv/persistence.js';
import { KvStore } from '../kv/store.js';

const PUSH_PROTOCOL = '/lashup/kv/push-sim/1';

export interface KvClusterOptions {
  seed: number | string;
  link?: Partial<LinkConfig>;
  kv?: Partial<KvConfig>;
  /** Persist to an in-memory file system per replica (default true). */
  persist?: boolean;
  fsync?: FsyncPolicy;
  /** Push deltas to every other replica (default true); false leaves everything to anti-entropy. */
  push?: boolean;
  /** The replicas a replica's anti-entropy picks among (default: every other replica), for a sparse graph like the daemon's kept peers. */
  peersOf?: (name: string) => string[];
}

export class KvCluster {
  readonly sim: Simulation;
  readonly config: KvConfig;
  private readonly names: string[] = [];
  private readonly stores = new Map<string, KvStore>();
  private readonly antiEntropy = new Map<string, AntiEntropy>();
  private readonly persistence = new Map<string, KvPersistence>();
  readonly disks = new Map<string, MemoryFs>();
  readonly recoveries = new Map<string, RecoveryReport>();
  private readonly options: KvClusterOptions;

  constructor(options: KvClusterOptions) {
    this.options = options;
    this.config = kvConfig(options.kv);
    this.sim = new Simulation({ seed: options.seed, network: options.link === undefined ? {} : { defaultLink: options.link } });
  }

  addReplica(name: string): void {
    this.names.push(name);
    const disk = new MemoryFs();
    this.disks.set(name, disk);
    this.sim.network.addHost(name, (host) => {
      const { packets, streams } = createSimTransports(host);
      let journal: KvPersistence | undefined;
      let initial;
      if (this.options.persist ?? true) {
        const opened = KvPersistence.open({ fs: disk, dir: 'kv', clock: host.clock, ...(this.options.fsync === undefined ? {} : { fsync: this.options.fsync }) });
        journal = opened.persistence;
        initial = opened.state;
        this.recoveries.set(name, opened.report);
        this.persistence.set(name, journal);
      }
      const others = (): string[] => this.names.filter((n) => n !== name);
      const publish =
        this.options.push === false
          ? undefined
          : (message: Uint8Array): void => {
              for (const peer of others()) {
                if (message.byteLength <= packets.maxPacketBytes) packets.send(peer, message);
                else
                  streams.open(peer, PUSH_PROTOCOL, (error, stream) => {
                    if (error === null && stream !== undefined) {
                      stream.send(message);
                      stream.close();
                    }
                  });
              }
            };
      const store = new KvStore({
        actor: name,
        config: this.config,
        clock: host.clock,
        ...(publish === undefined ? {} : { publish }),
        ...(journal === undefined ? {} : { journal }),
        ...(initial === undefined ? {} : { initial }),
      });
      journal?.setSnapshotSource(() => store.entries());
      packets.onPacket((packet) => store.receive(packet.data, packet.from));
      streams.handle(PUSH_PROTOCOL, (stream) => stream.onMessage((m) => store.receive(m.data, stream.remoteAddress)));
      const peersOf = this.options.peersOf;
      const aePeers = peersOf === undefined ? others : (): string[] => peersOf(name);
      const ae = new AntiEntropy({ store, streams, clock: host.clock, rng: host.rng.fork('anti-entropy'), peers: aePeers });
      ae.start();
      this.stores.set(name, store);
      this.antiEntropy.set(name, ae);
    });
  }

  /** A replica's anti-entropy (for its counters). */
  antiEntropyOf(name: string): AntiEntropy {
    const ae = this.antiEntropy.get(name);
    if (ae === undefined) throw new Error(`no replica ${name}`);
    return ae;
  }

  store(name: string): KvStore {
    const store = this.stores.get(name);
    if (store === undefined) throw new Error(`no replica ${name}`);
    return store;
  }

  ae(name: string): AntiEntropy {
    return this.antiEntropy.get(name) as AntiEntropy;
  }

  journal(name: string): KvPersistence | undefined {
    return this.persistence.get(name);
  }

  replicas(): string[] {
    return [...this.names];
  }

  isUp(name: string): boolean {
    return this.sim.network.host(name).up;
  }

  /** Kills a replica; with `powerLoss` its disk also loses what was not fsynced (torn writes). */
  crash(name: string, powerLoss = false): void {
    this.sim.network.crash(name);
    const disk = this.disks.get(name) as MemoryFs;
    if (powerLoss) disk.crash(this.sim.rng.fork(`disk:${name}`));
    else disk.kill();
  }

  restart(name: string): void {
    this.sim.network.restart(name);
  }

  runFor(ms: number): void {
    this.sim.runFor(ms);
  }

  /** A canonical fingerprint of a replica's whole state (keys and digests). */
  fingerprint(name: string): string {
    const store = this.store(name);
    return [...store.allKeys()]
      .sort()
      .map((k) => `${k}=${store.digestOf(k)}`)
      .join(',');
  }

  /** True when every up replica holds the same state. */
  converged(): boolean {
    const up = this.names.filter((n) => this.isUp(n));
    const first = up[0];
    if (first === undefined) return true;
    const reference = this.fingerprint(first);
    return up.every((n) => this.fingerprint(n) === reference);
  }
}
