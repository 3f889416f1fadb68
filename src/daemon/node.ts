/**
 * The node runtime: membership, the replicated store and both transports, assembled with real
 * timers and sockets. The daemon wraps it (config, allocator, dataplane, API); tests and the
 * cluster benchmark run it directly.
 *
 *   UDP (or libp2p streams) <- SWIM packets -> Membership --events--> libp2p dials, probe hints
 *   libp2p streams          <- syncs, pings ->
 *   gossipsub topic         <- kv deltas    -> KvStore <- anti-entropy (libp2p streams)
 *   data directory          <- peer key, kv snapshot + log
 *
 * Members find each other's libp2p addresses in membership metadata (peer id and multiaddrs),
 * so there is no separate discovery. A reset libp2p connection to a member (a killed process
 * resets its TCP connections at once) makes membership probe it out of turn.
 */
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { randomlySeededRng, RealClock, type Clock, type Rng, type TimerHandle, LashupError } from '../common/index.js';
import { NodeFs, writeFileAtomic, type StorageFs } from '../storage/index.js';
import { AntiEntropy, KvPersistence, KvStore, kvConfig, type FsyncPolicy, type KvConfig } from '../kv/index.js';
import type { Logger } from '../log/index.js';
import { AllocatorMaster, DEFAULT_OVERLAY_CONFIG, isLeaseNews, LeaseClient, validateOverlayConfig, type Lease, type MasterInfo, type OverlayConfig } from '../ipam/index.js';
import { FileRaftStorage, type RaftConfig, type Role } from '../raft/index.js';
import { announceAllocation, OVERLAY_CONFIG_KEY, OverlayConfigView, OwnedRowsAdmission, publishOverlayConfig } from '../keyspace/index.js';
import { PeerIdVerifier, signerFromLibp2pKey, type Signer, type Verifier } from '../identity/index.js';
import { MasterIdentities } from './master-identities.js';
import { LASHUP_VERSION } from './version.js';
import { FileLeaseStore } from './lease-store.js';
import { seedMultiaddr } from './seeds.js';
import { PeerManager } from './peers.js';
import { silentLogger, componentLogger } from '../log/index.js';
import { Membership, decodeMeta, encodeMeta, membershipConfig, type MemberMeta, type MemberRole, type MembershipConfig, type MembershipProfile } from '../membership/index.js';
import { Libp2pNode, StreamPacketTransport, UdpTransport, keyringFrom, parseClusterKey, pskFromClusterKey, type NodeNetwork, type PacketTransport } from '../net/index.js';

export const KV_TOPIC = 'lashup/kv/1';
/** Repairs with returning members run in batches this far apart, ms. */
const REPAIR_BATCH_MS = 500;
/** Returning members repaired with per batch. */
const REPAIRS_PER_BATCH = 2;

export interface NodeOptions {
  /** Member name: unique in the cluster, stable across restarts. */
  name: string;
  /** Data directory (peer key, kv snapshot and log). */
  dataDir: string;
  role: MemberRole;
  /** The address other agents send VXLAN traffic to. */
  underlayIp: string;
  version?: string;
  tags?: Record<string, string>;
  /** Base64 cluster keys, the first one primary (others accepted while rotating). */
  clusterKeys: readonly string[];
  /** Base64 key for libp2p's private network; default the primary cluster key. */
  networkKey?: string;
  /** Cluster label, authenticated in every packet and mixed into derived keys. */
  label: string;
  /** Address to bind UDP and libp2p to. */
  bindHost: string;
  /** Address others reach this node at, when it differs from bindHost. */
  advertiseHost?: string;
  /** UDP port for SWIM (0: any free port). */
  udpPort: number;
  /** TCP port for libp2p (0: any free port). */
  libp2pPort: number;
  /** Seeds: libp2p multiaddrs, or "host:port" of a seed's libp2p port. */
  seeds: readonly string[];
  /** SWIM packets over UDP (default) or over libp2p streams (one TCP port only). */
  packetTransport: 'udp' | 'libp2p';
  membershipProfile?: MembershipProfile;
  membership?: Partial<MembershipConfig>;
  kv?: Partial<KvConfig>;
  fsync?: FsyncPolicy;
  /** Names of the masters: the allocator's Raft voters (the same list on every node). */
  masters?: readonly string[];
  /** The overlay configuration (masters). Default: DC/OS's. */
  overlay?: OverlayConfig;
  raft?: Partial<RaftConfig>;
  /** Agents: interval between confirmations of the lease with the masters, ms. Default 30,000. */
  leaseCheckIntervalMs?: number;
  /** Random peers kept connected (see src/net/peer-set.ts). Default 5. */
  peerDegree?: number;
  /** Time between replacing one kept peer with another member, ms. Default 300,000 (see the `peers.rotateIntervalMs` setting). */
  peerRotateIntervalMs?: number;
  /** Inbound keeps accepted from other nodes (essential ones not counted). Default 12. */
  maxInboundPeers?: number;
  logger?: Logger;
  clock?: Clock;
  rng?: Rng;
  /** Told the propagation delay of every remote store delta that changed something (metrics). */
  observeKvPropagationMs?: (delayMs: number) => void;
  /** Where the store, Raft and the lease persist (default the real file system; tests: MemoryFs). */
  fs?: StorageFs;
}

/** The node's transports, for `LashupNode.withPorts` (the simulated cluster hands its own). */
export interface NodePorts {
  network: NodeNetwork;
  packets: PacketTransport;
  clock: Clock;
  rng: Rng;
  /**
   * The node's signing identity (its libp2p peer key) and the verifier of others'. With it,
   * masters pin agents' identities in their allocations, agents sign their rows, and the store
   * refuses remote writes over rows whose owner is known (keyspace/row-admission.ts). Absent
   * (the simulated cluster, whose stream addresses are not identities): none of that.
   */
  identity?: { signer: Signer; verifier: Verifier };
}

/** How often refused writes held by the store are checked again (allocations may have changed), ms. */
const READMIT_INTERVAL_MS = 2000;

/** Loads the node's Ed25519 peer key, creating it (mode 0600) on first start. */
export async function loadOrCreatePeerKey(dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, 'peer.key');
  if (existsSync(path)) {
    try {
      return privateKeyFromProtobuf(new Uint8Array(readFileSync(path)));
    } catch (err) {
      throw new LashupError('LASHUP_ERR_PEER_KEY_CORRUPT', `${path} does not hold a libp2p private key (${(err as Error).message}); restore it, or delete it to start as a new peer`, { path });
    }
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = await generateKeyPair('Ed25519');
  writeFileAtomic(new NodeFs(), path, privateKeyToProtobuf(key), { mode: 0o600 });
  return key;
}

/**
 * The libp2p addresses to publish in membership metadata, best first (peers dial the first).
 * With `advertiseHost`, that address comes first; loopback addresses go last. (Bound to 0.0.0.0,
 * libp2p lists 127.0.0.1 among its addresses, sometimes first: peers in other network namespaces
 * then dialled their own loopback and failed the handshake with "identity key does not match".)
 */
export function advertisedAddrs(listening: readonly string[], peerId: string, advertiseHost: string | undefined): string[] {
  const loopback = (a: string): boolean => /^\/ip4\/127\.|^\/ip6\/::1\//.test(a);
  const ordered = [...listening.filter((a) => !loopback(a)), ...listening.filter(loopback)];
  if (advertiseHost !== undefined) {
    const port = /\/tcp\/(\d+)/.exec(listening[0] ?? '')?.[1];
    if (port !== undefined) {
      const own = `/${advertiseHost.includes(':') ? 'ip6' : 'ip4'}/${advertiseHost}/tcp/${port}/p2p/${peerId}`;
      return [own, ...ordered.filter((a) => a !== own)].slice(0, 4);
    }
  }
  return ordered.slice(0, 4);
}

export class LashupNode {
  readonly membership: Membership;
  readonly kv: KvStore;
  readonly antiEntropy: AntiEntropy;
  readonly persistence: KvPersistence;
  /** The allocator (masters only). */
  readonly allocator: AllocatorMaster | undefined;
  /** This agent's lease client (agents only). */
  readonly lease: LeaseClient | undefined;
  readonly peers: PeerManager;
  /** The overlay configuration in use: the masters' published one (validated), else this node's own. */
  readonly overlayConfig: OverlayConfigView;
  readonly stats = { repairs: 0 };
  /** This node's row signer and the verifier of others' rows (absent in the simulated cluster). */
  readonly identity: { signer: Signer; verifier: Verifier } | undefined;
  /** The masters' identities as pinned at first contact (nodes with an identity and a masters list). */
  readonly masterIds: MasterIdentities | undefined;
  /** The masters' check of remote writes to agents' rows (masters with an identity only). */
  readonly rowAdmission: OwnedRowsAdmission | undefined;
  private readmitTimer: TimerHandle | undefined;
  private readonly rng: Rng;
  private stopped = false;
  private readonly leaseListeners = new Set<(lease: Lease) => void>();
  private readonly leaseLostListeners = new Set<(lease: Lease) => void>();
  private readonly leaseConfirmedListeners = new Set<(lease: Lease) => void>();
  private readonly clock: Clock;
  private readonly raftListeners = new Set<(state: { role: Role; term: number; leader: string | undefined }) => void>();
  private readonly metaCache = new WeakMap<Uint8Array, MemberMeta | null>();

  private constructor(
    readonly options: NodeOptions,
    readonly libp2p: NodeNetwork,
    readonly packets: PacketTransport,
    readonly udp: UdpTransport | undefined,
    readonly logger: Logger,
    clock: Clock,
    rng: Rng,
    identity: { signer: Signer; verifier: Verifier } | undefined,
  ) {
    this.clock = clock;
    this.rng = rng.fork('repairs');
    this.identity = identity;
    this.masterIds =
      identity === undefined || (options.masters ?? []).length === 0
        ? undefined
        : new MasterIdentities({ masters: options.masters ?? [], path: join(options.dataDir, 'master-ids.json'), fs: options.fs ?? new NodeFs(), logger: componentLogger(logger, 'master-ids') });
    if (options.role === 'master') this.masterIds?.pinSelf(options.name, libp2p.peerId);
    const meta = encodeMeta({
      role: options.role,
      underlayIp: options.underlayIp,
      version: options.version ?? LASHUP_VERSION,
      peerId: libp2p.peerId,
      addrs: advertisedAddrs(libp2p.multiaddrs, libp2p.peerId, options.advertiseHost),
      ...(options.tags === undefined ? {} : { tags: options.tags }),
    });
    this.membership = new Membership({
      name: options.name,
      address: packets.localAddress,
      meta,
      config: membershipConfig(options.membershipProfile ?? 'lan', options.membership),
      clock,
      rng: rng.fork('membership'),
      packets,
      streams: libp2p,
      logger: componentLogger(logger, 'membership'),
      streamAddressOf: (_name, _address, bytes) => this.meta(bytes)?.addrs?.[0],
      // Catch-up syncs over connections that exist (a stream, not a handshake). Read when a
      // sync is due: the peer manager is made below, after membership.
      connectedPeers: () => this.peers.roundAddresses(),
    });
    const opened = KvPersistence.open({
      fs: options.fs ?? new NodeFs(),
      dir: join(options.dataDir, 'kv'),
      clock,
      ...(options.fsync === undefined ? {} : { fsync: options.fsync }),
      logger: componentLogger(logger, 'kv-persistence'),
    });
    this.persistence = opened.persistence;
    try {
      this.kv = new KvStore({
        actor: options.name,
        config: kvConfig(options.kv),
        clock,
        publish: (message) => libp2p.publish(KV_TOPIC, message),
        journal: opened.persistence,
        initial: opened.state,
        logger: componentLogger(logger, 'kv'),
        ...(options.observeKvPropagationMs === undefined ? {} : { observePropagationMs: options.observeKvPropagationMs }),
        onRefusalHeld: () => this.scheduleReadmit(),
      });
      opened.persistence.setSnapshotSource(() => this.kv.entries());
      this.antiEntropy = new AntiEntropy({
        store: this.kv,
        streams: libp2p,
        clock,
        rng: rng.fork('anti-entropy'),
        // Rounds with kept peers (connected ones first, see PeerManager.roundAddresses); with
        // none yet, with any live member.
        peers: () => {
          const kept = this.peers.roundAddresses();
          return kept.length > 0 ? kept : this.livePeerAddresses();
        },
        logger: componentLogger(logger, 'anti-entropy'),
      });
      if (opened.report.truncatedBytes > 0 || opened.report.corruptSnapshots > 0) logger.warn({ recovery: opened.report }, 'kv recovered with repairs');
      libp2p.subscribe(KV_TOPIC, (data, from) => this.kv.receive(data, from));
      // Members' hosts are admitted to the libp2p handshake even when strangers hold every slot.
      libp2p.setMemberHosts((host) => this.memberHosts.has(host));
      this.peers = new PeerManager({
        name: options.name,
        role: options.role,
        membership: this.membership,
        libp2p,
        meta: (bytes) => this.meta(bytes),
        clock,
        rng: rng.fork('peers'),
        degree: options.peerDegree ?? 5,
        rotateIntervalMs: options.peerRotateIntervalMs ?? 300_000,
        retryBackoffMs: 10_000,
        logger: componentLogger(logger, 'peers'),
        // The first peers of a starting node: one repair pulls the cluster's state and pushes the
        // node's own writes, instead of waiting for the first anti-entropy round.
        onKept: (_name, address) => {
          if (this.firstRepairs < 2) {
            this.firstRepairs++;
            this.repairs.add(address);
            this.scheduleRepairs();
          }
        },
        // A member back from failed or left (a healed partition, a restart) may hold updates this
        // node missed while gossip could not reach it. Not on a refuted suspicion: during a
        // cluster's start those come by the hundred and each repair is a dial.
        onReturned: (_name, address) => this.queueRepair(address),
        // A reset kept connection (a killed process resets its TCP connections at once): probe
        // the member out of turn instead of at its next round-robin probe.
        onLost: (name) => {
          if (!this.stopped) this.membership.probeNow(name);
        },
      });
      this.membership.on((event) => {
        if (!('member' in event)) return;
        const meta = this.meta(event.member.meta);
        if (event.type === 'reaped') this.forgetHosts(event.member.name);
        else this.rememberHosts(event.member.name, event.member.address, meta);
        if (event.member.name !== options.name && isLeaseNews(event.type, meta)) this.lease?.kick();
      });
      const masters = options.masters ?? [];
      const overlay = options.overlay ?? (DEFAULT_OVERLAY_CONFIG as OverlayConfig);
      this.overlayConfig = new OverlayConfigView({ kv: this.kv, fallback: overlay, logger: componentLogger(logger, 'overlay-config') });
      if (options.role === 'master' && masters.includes(options.name)) {
        validateOverlayConfig(overlay);
        this.allocator = new AllocatorMaster({
          name: options.name,
          masters,
          overlay,
          storage: new FileRaftStorage(options.fs ?? new NodeFs(), join(options.dataDir, 'raft')),
          streams: libp2p,
          clock,
          rng: rng.fork('raft'),
          addressOf: (name) => (name === options.name ? advertisedAddrs(libp2p.multiaddrs, libp2p.peerId, options.advertiseHost)[0] : this.masterAddress(name)),
          ...(this.masterIds === undefined ? {} : { acceptSender: (name: string, from: string) => (this.masterIds as MasterIdentities).accept(name, from) }),
          ...(options.raft === undefined ? {} : { raft: options.raft }),
          logger: componentLogger(logger, 'allocator'),
          pinIdentities: identity !== undefined,
          ...(identity === undefined
            ? {}
            : {
                onGranted: (lease: Lease) => {
                  const member = this.membership.member(lease.agent);
                  announceAllocation(this.kv, lease, options.name, identity.signer, member === undefined ? undefined : this.meta(member.meta)?.underlayIp);
                },
              }),
          onStateChange: (state) => {
            const { role, term } = state;
            for (const listener of this.raftListeners) listener(state);
            // Agents find the leader in membership metadata.
            this.membership.updateMeta(encodeMeta({ ...this.baseMeta(), raft: { role, term } }));
            if (role === 'leader') this.publishOverlayConfig();
          },
        });
        if (identity !== undefined) {
          const allocator = this.allocator;
          let vteps: { applied: number; index: Map<string, Lease> } | undefined;
          // Ownership from the state this master applied (a released agent's rows lose their
          // owner the moment the release applies here).
          this.rowAdmission = new OwnedRowsAdmission(
            {
              byAgent: (agent) => allocator.state.lease(agent),
              byVtep: (vtepIp) => {
                if (vteps?.applied !== allocator.raft.lastApplied) vteps = { applied: allocator.raft.lastApplied, index: new Map(allocator.state.leases().map((l) => [l.vtepIp, l])) };
                return vteps.index.get(vtepIp);
              },
            },
            identity.verifier,
          );
          this.kv.setAdmission(this.rowAdmission);
        }
        // The leader puts the committed configuration back when the key is overwritten (a forged
        // or buggy write): agents ignore an invalid one, but a valid foreign one would be taken.
        this.kv.subscribe(
          (key) => key === OVERLAY_CONFIG_KEY,
          () => {
            if (this.allocator?.raft.role === 'leader') this.publishOverlayConfig();
          },
        );
      } else if (options.role === 'agent') {
        this.lease = new LeaseClient({
          agent: options.name,
          streams: libp2p,
          clock,
          rng: rng.fork('lease'),
          masters: () => this.masterInfos(),
          // Any open connection counts, the join's to its seed included: at the first request
          // the keeps to the masters are often still being asked.
          connected: (master) => libp2p.isConnected(master.address),
          store: new FileLeaseStore(join(options.dataDir, 'lease.json'), options.fs),
          // Only the masters' configuration says which networks a lease must cover; the local
          // file may be older or newer than the cluster's.
          wantedNetworks: () => (this.overlayConfig.published ? this.overlayConfig.current.networks.filter((n) => n.enabled !== false).map((n) => n.name) : undefined),
          logger: componentLogger(logger, 'lease'),
          ...(options.leaseCheckIntervalMs === undefined ? {} : { checkIntervalMs: options.leaseCheckIntervalMs }),
          onLease: (lease) => {
            for (const listener of this.leaseListeners) listener(lease);
          },
          onLeaseLost: (lease) => {
            for (const listener of this.leaseLostListeners) listener(lease);
          },
          onConfirmed: (lease) => {
            for (const listener of this.leaseConfirmedListeners) listener(lease);
          },
        });
        this.overlayConfig.subscribe(() => this.lease?.recheck());
      }
    } catch (err) {
      // Raft storage or the allocator failed after the store opened: close it (flush and stop
      // its timer), as a stop would; nothing of a failed start may keep running.
      this.persistence.close();
      throw err;
    }
  }

  /** Remote hosts (IP text) of known members, with the members that use each. */
  private readonly memberHosts = new Map<string, Set<string>>();

  private rememberHosts(name: string, udpAddress: string, meta: MemberMeta | undefined): void {
    if (name === this.options.name) return;
    const hosts = [meta?.underlayIp, /^\[?([^\]]+?)\]?:\d+$/.exec(udpAddress)?.[1], ...(meta?.addrs ?? []).map((a) => /^\/ip[46]\/([^/]+)\//.exec(a)?.[1])];
    for (const host of hosts) {
      if (host === undefined) continue;
      let names = this.memberHosts.get(host);
      if (names === undefined) {
        names = new Set();
        this.memberHosts.set(host, names);
      }
      names.add(name);
    }
  }

  private forgetHosts(name: string): void {
    for (const [host, names] of this.memberHosts) {
      names.delete(name);
      if (names.size === 0) this.memberHosts.delete(host);
    }
  }

  /** Members that returned since the last repair batch (REPAIRS_PER_BATCH are picked, the rest dropped). */
  private readonly returning = new Set<string>();
  /** Repairs to run in the next batch. */
  private readonly repairs = new Set<string>();
  private repairTimer: TimerHandle | undefined;
  private firstRepairs = 0;

  /**
   * A member came back: repair with returning members, at most REPAIRS_PER_BATCH per batch,
   * chosen at random, the others dropped. A healed partition brings back half the cluster at
   * once; repairing with each of them was N^2 rounds (each a dial) across the cluster. One
   * repair with any member of the other side pulls that side's state (it converged while apart),
   * and gossip and anti-entropy carry the rest.
   */
  private queueRepair(address: string): void {
    if (this.stopped) return;
    this.returning.add(address);
    this.scheduleRepairs();
  }

  private scheduleRepairs(): void {
    if (this.repairTimer !== undefined || this.stopped) return;
    this.repairTimer = this.clock.setTimer(REPAIR_BATCH_MS, () => {
      this.repairTimer = undefined;
      if (this.stopped) return;
      const returning = this.rng.shuffle([...this.returning]).slice(0, REPAIRS_PER_BATCH);
      this.returning.clear();
      for (const peer of new Set([...this.repairs, ...returning])) {
        this.stats.repairs++;
        this.antiEntropy.round(peer);
      }
      this.repairs.clear();
    });
  }

  /**
   * Calls `listener` with the lease held now (if any), then with every lease this agent
   * obtains: subscribers replay the current value like the store's, so no caller has to.
   */
  onLease(listener: (lease: Lease) => void): () => void {
    this.leaseListeners.add(listener);
    const current = this.lease?.current;
    if (current !== undefined) listener(current);
    return () => this.leaseListeners.delete(listener);
  }

  /** Calls `listener` when the masters say this agent's lease no longer holds (released while it ran). */
  onLeaseLost(listener: (lease: Lease) => void): () => void {
    this.leaseLostListeners.add(listener);
    return () => this.leaseLostListeners.delete(listener);
  }

  /** Calls `listener` each time the masters confirm this agent's lease. */
  onLeaseConfirmed(listener: (lease: Lease) => void): () => void {
    this.leaseConfirmedListeners.add(listener);
    return () => this.leaseConfirmedListeners.delete(listener);
  }

  /** The node's monotonic time (the clock membership's `stateChangedAtMs` is on), ms. */
  nowMs(): number {
    return this.clock.nowMs();
  }

  /**
   * Calls `listener` with this master's Raft role, term and leader now, then on every change
   * (a state replays its current value, like `onLease` and the store's subscriptions).
   */
  onAllocatorState(listener: (state: { role: Role; term: number; leader: string | undefined }) => void): () => void {
    this.raftListeners.add(listener);
    const raft = this.allocator?.raft;
    if (raft !== undefined) listener({ role: raft.role, term: raft.term, leader: raft.leaderId });
    return () => this.raftListeners.delete(listener);
  }

  private baseMeta(): MemberMeta {
    const o = this.options;
    return {
      role: o.role,
      underlayIp: o.underlayIp,
      version: o.version ?? LASHUP_VERSION,
      peerId: this.libp2p.peerId,
      addrs: advertisedAddrs(this.libp2p.multiaddrs, this.libp2p.peerId, this.options.advertiseHost),
      ...(o.tags === undefined ? {} : { tags: o.tags }),
    };
  }

  /** A member's libp2p address, from its metadata. */
  addressOf(name: string): string | undefined {
    const member = this.membership.member(name);
    return member === undefined || member.state !== 'alive' ? undefined : this.meta(member.meta)?.addrs?.[0];
  }

  /**
   * The libp2p address of master `name` when it is alive and, with pinned master identities,
   * presents its pinned identity in an address that names it (`/p2p/<peer id>`: the dial then
   * authenticates it); undefined otherwise.
   */
  masterAddress(name: string): string | undefined {
    const member = this.membership.member(name);
    if (member === undefined || member.state !== 'alive') return undefined;
    return this.trustedMasterAddress(name, this.meta(member.meta));
  }

  private trustedMasterAddress(name: string, meta: MemberMeta | undefined): string | undefined {
    const address = meta?.addrs?.[0];
    if (address === undefined || this.masterIds === undefined) return address;
    const peerId = meta?.peerId ?? '';
    return address.endsWith(`/p2p/${peerId}`) && this.masterIds.accept(name, peerId) ? address : undefined;
  }

  /**
   * The masters membership knows, with the Raft role they publish. With pinned master
   * identities, only members named in `masters` that present their pinned identity: a member
   * claiming the master role under another name, or a master's name with another key, is not
   * asked for leases or allocations.
   */
  masterInfos(): MasterInfo[] {
    const out: MasterInfo[] = [];
    for (const m of this.membership.members()) {
      const meta = this.meta(m.meta);
      if (m.state !== 'alive' || meta?.role !== 'master') continue;
      const address = this.trustedMasterAddress(m.name, meta);
      if (address === undefined) continue;
      out.push({ name: m.name, address, leader: meta.raft?.role === 'leader', term: meta.raft?.term ?? 0 });
    }
    return out;
  }

  private publishOverlayConfig(): void {
    const allocator = this.allocator as AllocatorMaster;
    // The committed configuration, once the leader knows it (after its first commit).
    allocator.raft.read((error) => {
      const config = allocator.state.config;
      if (error !== null || config === undefined || this.stopped) return;
      publishOverlayConfig(this.kv, config);
    });
  }

  /** Starts a node: transports bound, membership running, joining the seeds. */
  static async start(options: NodeOptions): Promise<LashupNode> {
    const logger = componentLogger(options.logger ?? silentLogger(), 'node').child({ node: options.name });
    const clock = options.clock ?? new RealClock();
    const rng = options.rng ?? randomlySeededRng();
    const keyring = keyringFrom(options.clusterKeys);
    const networkKey = options.networkKey === undefined ? keyring.primary : parseClusterKey(options.networkKey, 'networkKey');
    const privateKey = await loadOrCreatePeerKey(options.dataDir);
    const proto = options.bindHost.includes(':') ? 'ip6' : 'ip4';
    const libp2p = await Libp2pNode.start({
      privateKey,
      listen: [`/${proto}/${options.bindHost}/tcp/${options.libp2pPort}`],
      psk: pskFromClusterKey(networkKey, options.label),
      ...(options.maxInboundPeers === undefined ? {} : { maxInboundKeeps: options.maxInboundPeers }),
      logger: componentLogger(logger, 'libp2p'),
    });
    let udp: UdpTransport | undefined;
    let packets: PacketTransport;
    try {
      if (options.packetTransport === 'libp2p') packets = new StreamPacketTransport(libp2p);
      else {
        udp = await UdpTransport.open({
          host: options.bindHost,
          port: options.udpPort,
          ...(options.advertiseHost === undefined ? {} : { advertiseHost: options.advertiseHost }),
          keyring,
          label: options.label,
          clock,
          logger: componentLogger(logger, 'udp'),
        });
        packets = udp;
      }
    } catch (err) {
      await libp2p.stop();
      throw err;
    }
    try {
      const identity = { signer: signerFromLibp2pKey(privateKey), verifier: new PeerIdVerifier() };
      const node = LashupNode.run(options, { network: libp2p, packets, clock, rng, identity }, udp, logger);
      logger.info({ udp: udp?.localAddress, libp2p: libp2p.multiaddrs, peerId: libp2p.peerId }, 'node started');
      return node;
    } catch (err) {
      // The store or Raft storage failed to open: the sockets bound above must not outlive
      // the failed start (they did: a retry then found its own ports taken).
      packets.close();
      await libp2p.stop();
      throw err;
    }
  }

  /**
   * A node over transports made elsewhere (the simulated cluster's): no peer key, sockets or
   * real clock; membership, peers, anti-entropy and the allocator or lease client started, the
   * seeds joined.
   */
  static withPorts(options: NodeOptions, ports: NodePorts): LashupNode {
    const logger = componentLogger(options.logger ?? silentLogger(), 'node').child({ node: options.name });
    return LashupNode.run(options, ports, undefined, logger);
  }

  private static run(options: NodeOptions, ports: NodePorts, udp: UdpTransport | undefined, logger: Logger): LashupNode {
    const { network, packets, clock, rng } = ports;
    // Seeds are checked before anything starts: a bad one must not leave a half-started node.
    const own = advertisedAddrs(network.multiaddrs, network.peerId, options.advertiseHost);
    const seeds = options.seeds.map(seedMultiaddr).filter((seed) => !own.some((a) => a === seed || a.startsWith(`${seed}/`)));
    const node = new LashupNode(options, network, packets, udp, logger, clock, rng, ports.identity);
    node.membership.start();
    node.peers.start();
    node.antiEntropy.start();
    node.allocator?.start();
    node.lease?.start();
    // A node listed among its own seeds (one config file for all masters) joins through the others.
    const startedAtMs = clock.nowMs();
    if (seeds.length > 0) node.membership.join(seeds, () => logger.info({ members: node.membership.liveCount, afterMs: Math.round(clock.nowMs() - startedAtMs) }, 'joined the cluster'));
    return node;
  }

  get name(): string {
    return this.options.name;
  }

  /**
   * Checks the store's held refused writes again every READMIT_INTERVAL_MS while it holds some:
   * what the admission check knows (allocations) changes without the store hearing of it, and a
   * removal refused before a release was learnt must pass after. Armed by the store when it
   * holds a write instead of polling: it woke every idle node every 2 s for an empty list (a
   * bare Node process here uses about 0.25 ms of CPU per timer wake-up, whatever the callback
   * does; the cluster bench's idle figure did not move beyond its run-to-run spread without it).
   */
  private scheduleReadmit(): void {
    if (this.readmitTimer !== undefined || this.stopped) return;
    this.readmitTimer = this.clock.setTimer(READMIT_INTERVAL_MS, () => {
      this.readmitTimer = undefined;
      if (this.stopped) return;
      if (this.kv.heldRefused > 0) this.kv.readmit();
      if (this.kv.heldRefused > 0) this.scheduleReadmit();
    });
  }

  /** Decoded metadata (cached per interned byte array); undefined when undecodable. */
  meta(bytes: Uint8Array): MemberMeta | undefined {
    let cached = this.metaCache.get(bytes);
    if (cached === undefined) {
      try {
        cached = decodeMeta(bytes);
      } catch {
        cached = null;
      }
      this.metaCache.set(bytes, cached);
    }
    return cached ?? undefined;
  }

  private livePeerAddresses(): string[] {
    const out: string[] = [];
    for (const m of this.membership.members()) {
      if (m.state !== 'alive' || m.name === this.options.name) continue;
      const address = this.meta(m.meta)?.addrs?.[0];
      if (address !== undefined) out.push(address);
    }
    return out;
  }

  /** Leaves the cluster gracefully, flushes the store and closes everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await new Promise<void>((resolve) => this.membership.leave(resolve));
    await this.shutdown();
  }

  /** Stops without a goodbye (tests: as close to a crash as one process allows). */
  async kill(): Promise<void> {
    await this.shutdown();
  }

  private async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.repairTimer?.cancel();
    this.repairTimer = undefined;
    this.readmitTimer?.cancel();
    this.peers.stop();
    this.allocator?.stop();
    this.lease?.stop();
    this.membership.stop();
    this.antiEntropy.stop();
    this.overlayConfig.close();
    this.kv.close();
    this.persistence.close();
    this.packets.close();
    await this.libp2p.stop();
    this.logger.info('node stopped');
  }
}
