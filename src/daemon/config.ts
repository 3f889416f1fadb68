/**
 * The daemon's configuration: one JSON file, validated against the schema below. Unknown keys
 * are rejected (a misspelt key silently ignored is how an operator ends up running defaults they
 * did not choose); every error gives the JSON path, the bad value and what would be valid, and all
 * errors are reported at once. Every field's meaning, unit, default and the reason for the
 * default live in its `doc`; `configReference()` renders them for the README and `--help`.
 */
import { LashupError, isIp } from '../common/index.js';
import { DEFAULT_OVERLAY_CONFIG, validateOverlayConfig, type OverlayConfig } from '../ipam/index.js';
import { membershipConfig, type MembershipConfig, type MembershipProfile } from '../membership/index.js';
import { seedMultiaddr } from './seeds.js';

export const ConfigErrorCode = {
  /** The file is not valid JSON or does not match the schema (details.errors lists every problem). */
  Invalid: 'LASHUP_ERR_CONFIG_INVALID',
  /** The file cannot be read. */
  Unreadable: 'LASHUP_ERR_CONFIG_UNREADABLE',
} as const;

export interface ConfigProblem {
  /** JSON path of the bad value, such as `$.api.port`. */
  path: string;
  value: unknown;
  /** What would be valid. */
  expected: string;
}

export class ConfigError extends LashupError {
  constructor(
    code: (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode],
    message: string,
    readonly problems: ConfigProblem[] = [],
  ) {
    super(code, message, { errors: problems });
  }
}

export interface DaemonConfig {
  name: string;
  role: 'master' | 'agent';
  dataDir: string;
  underlayIp: string;
  masters: string[];
  seeds: string[];
  cluster: { keys: string[]; label: string; networkKey?: string };
  listen: { bindHost: string; advertiseHost?: string; udpPort: number; libp2pPort: number };
  membership: { profile: MembershipProfile; packetTransport: 'udp' | 'libp2p'; overrides: Partial<MembershipConfig> };
  api: { host: string; port: number; tcp: boolean; tokenFile: string; socketPath: string; socketGroup: string; ui: boolean };
  dataplane: { enabled: boolean; resyncIntervalMs: number; masquerade: boolean; firewallResyncIntervalMs: number };
  cni: { enabled: boolean; socketPath: string; confDir: string };
  docker: { enabled: boolean; socketPath: string; resyncIntervalMs: number; timeoutMs: number };
  dns: { enabled: boolean; listen: string[]; listenGateways: boolean; port: number; zone: string; ttlSeconds: number; upstreams: string[]; upstreamTimeoutMs: number; withholdFailed: boolean };
  ipam: { releaseGraceMs: number; leaseCheckIntervalMs: number };
  vips: { enabled: boolean; ejectSuspect: boolean; releaseGraceMs: number; assignIntervalMs: number };
  peers: { degree: number; rotateIntervalMs: number; maxInbound: number };
  overlay: OverlayConfig;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}

type Kind =
  | { type: 'string'; pattern?: RegExp; patternText?: string }
  | { type: 'ip' }
  | { type: 'integer'; min: number; max: number }
  | { type: 'boolean' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'strings'; min: number; item?: RegExp; itemText?: string }
  | { type: 'object'; fields: Record<string, Field> }
  | { type: 'custom'; check: (value: unknown, path: string) => ConfigProblem[]; describe: string };

interface Field {
  kind: Kind;
  doc: string;
  /** Absent: required. */
  default?: unknown;
  optional?: true;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** The settings of one overlay network (see OverlayNetworkConfig). */
const NETWORK_SETTINGS = ['name', 'subnet', 'prefix', 'subnet6', 'prefix6', 'enabled', 'allowFrom', 'allowHosts', 'allowOutbound'];
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

const membershipFields = Object.keys(membershipConfig('lan'));

export const CONFIG_SCHEMA: Record<string, Field> = {
  name: {
    kind: { type: 'string', pattern: NAME, patternText: '1-63 letters, digits, ".", "_" or "-", starting with a letter or digit' },
    doc: 'Member name: unique in the cluster and stable across restarts (the allocator keys leases by it). Required.',
  },
  role: { kind: { type: 'enum', values: ['master', 'agent'] }, doc: 'master (runs the allocator, a Raft voter when named in `masters`) or agent (gets a lease and programs the overlay). Required.' },
  dataDir: {
    kind: { type: 'string' },
    default: '/var/lib/lashup',
    doc: 'Directory for the peer key, the store (snapshot + log), Raft state and the lease. Default /var/lib/lashup (FHS state directory).',
  },
  underlayIp: { kind: { type: 'ip' }, doc: "This node's address on the underlay network: the VXLAN source and where peers send overlay traffic. Required." },
  masters: {
    kind: { type: 'strings', min: 1, item: NAME, itemText: 'member names' },
    doc: 'Names of the masters: the Raft voters. The same list on every node. Required; 3 or 5 for fault tolerance.',
  },
  seeds: {
    kind: {
      type: 'custom',
      describe: 'a list of "host:port" (port 1-65535) or TCP multiaddrs',
      check: (value, path) => {
        if (!Array.isArray(value)) return [{ path, value, expected: 'a list of "host:port" (port 1-65535) or TCP multiaddrs' }];
        const problems: ConfigProblem[] = [];
        value.forEach((seed: unknown, i) => {
          if (typeof seed !== 'string') problems.push({ path: `${path}[${i}]`, value: seed, expected: 'a string: "host:port" or a TCP multiaddr' });
          else {
            try {
              seedMultiaddr(seed);
            } catch (err) {
              problems.push({ path: `${path}[${i}]`, value: seed, expected: (err as Error).message.replace(/^seed .*? is not valid: /, '') });
            }
          }
        });
        return problems;
      },
    },
    default: [],
    doc: 'Where to join: libp2p multiaddrs or "host:port" of nodes\' libp2p ports. Default none (the first master starts alone).',
  },
  cluster: {
    kind: {
      type: 'object',
      fields: {
        keys: {
          kind: { type: 'strings', min: 1, item: BASE64_KEY, itemText: 'base64 32-byte keys (`lashup keygen`)' },
          doc: 'Cluster keys, base64 of 32 bytes; the first encrypts, all decrypt (add the new key second, then make it first everywhere, then drop the old one). Required.',
        },
        label: {
          kind: { type: 'string', pattern: NAME, patternText: 'a short name' },
          default: 'lashup',
          doc: 'Cluster label, authenticated in every packet so that two clusters sharing a key still cannot talk. Default "lashup".',
        },
        networkKey: {
          kind: { type: 'string', pattern: BASE64_KEY, patternText: 'a base64 32-byte key' },
          optional: true,
          doc: "Key of libp2p's private network. Default: derived from the primary cluster key.",
        },
      },
    },
    doc: 'Cluster identity and keys.',
  },
  listen: {
    kind: {
      type: 'object',
      fields: {
        bindHost: { kind: { type: 'ip' }, default: '0.0.0.0', doc: 'Address the UDP and libp2p sockets bind to. Default 0.0.0.0 (all).' },
        advertiseHost: { kind: { type: 'ip' }, optional: true, doc: 'Address others reach this node at, when it differs from bindHost. Default: underlayIp.' },
        udpPort: { kind: { type: 'integer', min: 0, max: 65535 }, default: 62501, doc: 'UDP port of SWIM. Default 62501. 0: any free port (tests).' },
        libp2pPort: { kind: { type: 'integer', min: 0, max: 65535 }, default: 62502, doc: 'TCP port of libp2p (store replication, anti-entropy, RPC). Default 62502. 0: any free port.' },
      },
    },
    doc: 'Sockets.',
  },
  membership: {
    kind: {
      type: 'object',
      fields: {
        profile: { kind: { type: 'enum', values: ['lan', 'wan', 'local'] }, default: 'lan', doc: 'Timing profile (see src/membership/config.ts). Default lan: one data centre.' },
        packetTransport: {
          kind: { type: 'enum', values: ['udp', 'libp2p'] },
          default: 'udp',
          doc: 'SWIM over encrypted UDP, or over libp2p streams for sites that allow one TCP port only. Default udp.',
        },
        overrides: {
          kind: {
            type: 'custom',
            describe: `an object with any of ${membershipFields.join(', ')}`,
            check: (value, path) => {
              if (value === null || typeof value !== 'object' || Array.isArray(value)) return [{ path, value, expected: 'an object of membership settings' }];
              const problems: ConfigProblem[] = [];
              for (const key of Object.keys(value))
                if (!membershipFields.includes(key))
                  problems.push({ path: `${path}.${key}`, value: (value as Record<string, unknown>)[key], expected: `a membership setting (${membershipFields.join(', ')})` });
              if (problems.length > 0) return problems;
              try {
                membershipConfig('lan', value as Partial<MembershipConfig>);
              } catch (err) {
                return [{ path, value, expected: err instanceof Error ? err.message : String(err) }];
              }
              return [];
            },
          },
          default: {},
          doc: 'Per-field overrides of the profile, each validated by the membership module. Default none.',
        },
      },
    },
    doc: 'Membership (SWIM + Lifeguard).',
  },
  api: {
    kind: {
      type: 'object',
      fields: {
        socketPath: {
          kind: { type: 'string', pattern: /^\/.{1,100}$/, patternText: 'an absolute path of at most 100 characters (unix socket limit)' },
          default: '/run/lashup/api.sock',
          doc: 'Unix socket of the HTTP API: full control, no token; who may connect is decided by the file mode (0600, root only, unless socketGroup is set). The lashup CLI uses it by default. Default /run/lashup/api.sock.',
        },
        socketGroup: {
          kind: { type: 'string', pattern: /^([a-z_][a-z0-9_-]{0,31}|\d{1,10})?$/, patternText: 'empty, a group name or a numeric group id' },
          default: '',
          doc: 'A group whose members may use the API socket (the socket gets that group and mode 0660), like the docker group. Default empty: root only (0600).',
        },
        tcp: {
          kind: { type: 'boolean' },
          default: true,
          doc: 'Serve the API on host:port too: /metrics open for scrapers (read-only), every other route only with the bearer token of tokenFile. false: no TCP listener (no /metrics either). Default true.',
        },
        host: { kind: { type: 'ip' }, default: '127.0.0.1', doc: 'Address of the TCP listener (API with the token, and /metrics). Default 127.0.0.1.' },
        port: { kind: { type: 'integer', min: 1, max: 65535 }, default: 62080, doc: 'Port of the TCP listener. Default 62080.' },
        tokenFile: {
          kind: { type: 'string', pattern: /^(\/.*)?$/, patternText: 'empty or an absolute path' },
          default: '',
          doc: 'File holding the bearer token the TCP listener requires (Authorization: Bearer TOKEN), created with a random token (mode 0600) at first start. `lashup --api HOST:PORT` reads it from here (or --token-file). Default empty: <dataDir>/api.token.',
        },
        ui: {
          kind: { type: 'boolean' },
          default: true,
          doc: 'Serve the status page at http://HOST:PORT/ui (members, routes desired vs programmed, address usage, VIP and policy counters, a live chart of store propagation delay). Read-only and self-contained; like /metrics it needs no token over TCP, so anyone who can reach the listener (127.0.0.1 by default) can read the cluster view. Default true; false serves neither the page nor its data.',
        },
      },
    },
    doc: 'HTTP API: a unix socket for local control, and a TCP listener for /metrics and token-holding clients.',
  },
  dataplane: {
    kind: {
      type: 'object',
      fields: {
        enabled: { kind: { type: 'boolean' }, default: true, doc: 'Program the kernel (agents). false runs membership, store and allocator only. Default true.' },
        resyncIntervalMs: {
          kind: { type: 'integer', min: 1000, max: 3_600_000 },
          default: 60_000,
          doc: 'Milliseconds between full kernel resyncs; notifications repair drift at once, this is the backstop. Default 60,000.',
        },
        masquerade: {
          kind: { type: 'boolean' },
          default: true,
          doc: "Masquerade overlay-sourced traffic leaving the overlay (nftables tables `ip lashup` and `ip6 lashup`, owned by lashup, following the overlay configuration the masters publish, removed on leave). Default true, as DC/OS did. false: no masquerade; the isolation rules between overlay networks (each network's allowFrom, allowHosts, allowOutbound) stay in force either way.",
        },
        firewallResyncIntervalMs: {
          kind: { type: 'integer', min: 1000, max: 3_600_000 },
          default: 30_000,
          doc: "Milliseconds between listings of lashup's nftables tables; a table changed or removed by someone else (`nft flush ruleset`, another firewall manager) is put back within this interval, and the isolation drop counters are read for /metrics. Costs a few `nft` runs per interval. Default 30,000.",
        },
      },
    },
    doc: 'Kernel programming.',
  },
  cni: {
    kind: {
      type: 'object',
      fields: {
        enabled: { kind: { type: 'boolean' }, default: true, doc: 'Serve the lashup-ipam CNI plugin and write a CNI configuration per network (agents). Default true.' },
        socketPath: {
          kind: { type: 'string', pattern: /^\/.{1,100}$/, patternText: 'an absolute path of at most 100 characters (unix socket limit)' },
          default: '/run/lashup/cni.sock',
          doc: "Unix socket where lashup-ipam reaches the daemon. Default /run/lashup/cni.sock (the plugin's default too).",
        },
        confDir: {
          kind: { type: 'string', pattern: /^\//, patternText: 'an absolute path' },
          default: '/etc/cni/net.d',
          doc: 'Where `<network>.conflist` is written (bridge on m-<network> chained with lashup-ipam). Default /etc/cni/net.d, where runtimes look.',
        },
      },
    },
    doc: 'Container addresses through CNI.',
  },
  docker: {
    kind: {
      type: 'object',
      fields: {
        enabled: {
          kind: { type: 'boolean' },
          default: true,
          doc: "Agents: keep a Docker network per overlay network in the local Docker daemon (bridge driver on d-<network>, the agent's Docker half as its subnet), as DC/OS did, so `docker run --network <network>` gives containers overlay addresses. With no daemon on the socket it waits quietly (one log line) and picks one up when it appears. Default true.",
        },
        socketPath: {
          kind: { type: 'string', pattern: /^\/.{1,100}$/, patternText: 'an absolute path of at most 100 characters (unix socket limit)' },
          default: '/var/run/docker.sock',
          doc: "The Docker daemon's Engine API socket. Default /var/run/docker.sock, Docker's own default.",
        },
        resyncIntervalMs: {
          kind: { type: 'integer', min: 1000, max: 3_600_000 },
          default: 10_000,
          doc: 'Milliseconds between comparisons of the Docker networks with the lease (and right after every lease change): a network deleted or changed by hand, or a Docker daemon restarted or started later, is put right within this interval. Each costs a ping, a list and one inspect per overlay network. Default 10,000.',
        },
        timeoutMs: {
          kind: { type: 'integer', min: 100, max: 600_000 },
          default: 5000,
          doc: "Longest one Engine API request may take, in milliseconds; a slower daemon's request fails (counted, logged once per state change) and the next resync tries again. Nothing else in the daemon waits for Docker. Default 5,000.",
        },
      },
    },
    doc: 'Docker containers on the overlay (the d-<network> half).',
  },
  dns: {
    kind: {
      type: 'object',
      fields: {
        enabled: {
          kind: { type: 'boolean' },
          default: true,
          doc: 'Run the Virtual Network Service DNS server (UDP and TCP) answering `<task>.<framework>.containerip.<zone>` (and `autoip`, `agentip`) from the tasks agents publish, and forwarding other names upstream. A server that cannot bind its addresses is logged (LASHUP_ERR_DNS_LISTEN) and the daemon runs on without it. Default true.',
        },
        listen: {
          kind: { type: 'strings', min: 1, item: /^[0-9A-Fa-f:.]+$/, itemText: 'an IP address' },
          default: ['127.0.0.1'],
          doc: 'Addresses the DNS server always listens on (it does not start without them). Default 127.0.0.1: the node itself.',
        },
        listenGateways: {
          kind: { type: 'boolean' },
          default: true,
          doc: "Also listen on each overlay bridge's gateway address of this agent's lease (m-<network> and d-<network>, IPv4 and IPv6), so containers use their gateway as resolver; the lashup-ipam CNI result names it (`dns.nameservers`), Docker containers get it with `--dns <gateway>`. A gateway that cannot be bound yet (its bridge is not up) is retried every second. Default true. Containers reach it even on networks that do not `allowHosts`: that rule filters forwarded traffic, not traffic to the agent.",
        },
        port: {
          kind: { type: 'integer', min: 0, max: 65_535 },
          default: 53,
          doc: 'DNS port (UDP and TCP). Default 53. 0: any free port (tests).',
        },
        zone: {
          kind: { type: 'string', pattern: /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, patternText: 'a lower-case DNS name of at least two labels' },
          default: 'dcos.thisdcos.directory',
          doc: "The zone the server answers for. Default dcos.thisdcos.directory, DC/OS's.",
        },
        ttlSeconds: {
          kind: { type: 'integer', min: 0, max: 3600 },
          default: 5,
          doc: 'TTL of the answers, seconds: short, since a task moves with every restart. Default 5.',
        },
        upstreams: {
          kind: { type: 'strings', min: 0, item: /^\[?[0-9A-Fa-f:.]+\]?(:\d{1,5})?$/, itemText: 'an IP address, optionally with :port' },
          default: [],
          doc: "Resolvers names outside the zone are forwarded to, in order. Default: the nameservers of the host's /etc/resolv.conf at start, without this server's own addresses.",
        },
        upstreamTimeoutMs: {
          kind: { type: 'integer', min: 100, max: 60_000 },
          default: 2000,
          doc: 'Longest wait for one upstream, milliseconds; then the next, and SERVFAIL when none answered. Default 2,000.',
        },
        withholdFailed: {
          kind: { type: 'boolean' },
          default: true,
          doc: "Leave out the records of agents membership declares failed, until they are alive again. Default true: a failed agent's tasks are most likely gone.",
        },
      },
    },
    doc: 'Names: the Virtual Network Service DNS.',
  },
  vips: {
    kind: {
      type: 'object',
      fields: {
        enabled: {
          kind: { type: 'boolean' },
          default: true,
          doc: "VIPs (see src/vips): agents balance connections to the VIPs tasks declare over the declaring tasks' containers with nftables (table `lashup_vips`); masters give named VIPs their addresses from the overlay's `vipSubnet`/`vipSubnet6`. Default true. False on an agent: it programs no VIP (its containers' VIP declarations still count elsewhere); on every master: named VIPs get no address.",
        },
        ejectSuspect: {
          kind: { type: 'boolean' },
          default: true,
          doc: 'Agents: leave a backend out of new connections while membership suspects its agent (it missed its probes, direct and indirect), not only once it is declared failed; it comes back the moment the agent refutes the suspicion. Default true: a suspected agent is most often gone, and declaring it failed takes the suspicion timeout on top (2 s or more), during which every connection sent there would hang; a falsely suspected agent loses new connections for the few hundred ms its refutation takes, and established connections are never touched.',
        },
        releaseGraceMs: {
          kind: { type: 'integer', min: 0, max: 7 * 24 * 3_600_000 },
          default: 600_000,
          doc: "Masters: milliseconds a named VIP keeps its address after the last task declaring it is gone, before the address may go to another name. Default 600,000 (10 minutes): a redeploy or an agent's restart ends well within it, and clients holding the address (a cached DNS answer, a configuration file) reach the new tasks.",
        },
        assignIntervalMs: {
          kind: { type: 'integer', min: 100, max: 3_600_000 },
          default: 5_000,
          doc: "Masters: milliseconds between the leader's checks of declared VIPs against the allocator, on top of the check that every change of the store's tasks starts at once. It releases VIPs whose grace period ended and publishes the table again if it was changed in the store. Default 5,000.",
        },
      },
    },
    doc: 'Virtual IPs: stable addresses for services, load-balanced on every agent.',
  },
  peers: {
    kind: {
      type: 'object',
      fields: {
        degree: {
          kind: { type: 'integer', min: 1, max: 64 },
          default: 5,
          doc: 'Random members this node keeps a libp2p connection to (an agent keeps its masters on top, a master the other masters). Gossipsub meshes over these connections, anti-entropy picks among them, and others keep connections to this node the same way, so a node holds about 2 x degree connections whatever the cluster size (17 at most with the defaults), where it used to hold one per member. Default 5: with about 10 connections per node and a gossipsub mesh of 4, a store update reaches 1,000 nodes in about 5 hops (the publisher sends to its ~10 connections, then each hop multiplies by ~3 new nodes: 1 + log3(100)), 200 nodes in about 4; each node receives an update 4 to 6 times (mesh duplicates: a mesh is pruned back to 4 peers when it grows past 6), about 350 bytes each for an overlay entry, so 1.4-2.1 KB per node and 1.4-2.1 MB across 1,000 nodes per update. Higher: fewer hops, more duplicates and connections; lower: the graph can split after failures.',
        },
        rotateIntervalMs: {
          kind: { type: 'integer', min: 0, max: 86_400_000 },
          default: 300_000,
          doc: 'Milliseconds between replacing one random kept peer with another member (plus up to half of it as jitter); 0 never rotates. Keeps the connection graph random as members come and go and spreads inbound connections over the members (a member that comes back from failed or left, as after a healed partition, triggers one swap at once whatever this is). Default 300,000: each rotation is a handshake, gossipsub streams and a mesh change at both ends; at 60,000 the 60-node cluster bench measured 0.324 % idle CPU and 310 B/s per node, at 300,000 0.275 % and 247 B/s (three runs each, same session; update-to-all p99 112-125 ms against 129-155 ms).',
        },
        maxInbound: {
          kind: { type: 'integer', min: 1, max: 4096 },
          default: 12,
          doc: "Kept connections other nodes may hold to this one, an agent's connections to its masters not counted (masters accept every agent). Beyond it the keep is refused and the asker picks another member, so no node collects connections as the cluster grows. Default 12: with a degree of 5 a node has on average 5 inbound; more than 12 is rare, and each refusal costs the asker a handshake.",
        },
      },
    },
    doc: 'The bounded set of libp2p connections (see src/net/peer-set.ts).',
  },
  ipam: {
    kind: {
      type: 'object',
      fields: {
        releaseGraceMs: {
          kind: { type: 'integer', min: 0, max: 7 * 24 * 3_600_000 },
          default: 300_000,
          doc: 'Masters: milliseconds after an agent left or failed (as membership sees it) before `allocations release` frees its subnet without --force; an alive or suspect agent is never released without it. Default 300,000 (5 minutes): long enough for a restart or a short partition to end, so a running agent does not lose its addresses to the next one.',
        },
        leaseCheckIntervalMs: {
          kind: { type: 'integer', min: 1000, max: 3_600_000 },
          default: 30_000,
          doc: 'Agents: milliseconds between confirmations of the lease with the masters (a Raft read); an agent released while it ran notices within this interval (at once when its overlay entry is removed), stops advertising its old subnet and asks for a new one. Default 30,000.',
        },
      },
    },
    doc: 'Allocation of subnets and VTEP addresses.',
  },
  overlay: {
    kind: {
      type: 'custom',
      describe: 'the overlay configuration (vtepSubnet, vtepSubnet6, vtepMacOui, vtepName, vni, vxlanPort, mtu, networks[], vipSubnet, vipSubnet6)',
      check: (value, path) => {
        if (value === null || typeof value !== 'object' || Array.isArray(value)) return [{ path, value, expected: 'an object' }];
        const known = Object.keys(DEFAULT_OVERLAY_CONFIG);
        const problems: ConfigProblem[] = [];
        for (const key of Object.keys(value))
          if (!known.includes(key)) problems.push({ path: `${path}.${key}`, value: (value as Record<string, unknown>)[key], expected: `an overlay setting (${known.join(', ')})` });
        const nets = (value as { networks?: unknown }).networks;
        if (Array.isArray(nets)) {
          nets.forEach((n, i) => {
            if (n !== null && typeof n === 'object') {
              for (const key of Object.keys(n))
                if (!NETWORK_SETTINGS.includes(key))
                  problems.push({ path: `${path}.networks[${i}].${key}`, value: (n as Record<string, unknown>)[key], expected: `a network setting (${NETWORK_SETTINGS.join(', ')})` });
            }
          });
        }
        if (problems.length > 0) return problems;
        try {
          validateOverlayConfig({ ...DEFAULT_OVERLAY_CONFIG, ...(value as Partial<OverlayConfig>) });
        } catch (err) {
          const details = (err as { details?: { path?: string; value?: unknown } }).details;
          // The allocator's validator names paths from "overlay." already.
          const inner = details?.path ?? '';
          const full = inner.startsWith('overlay') ? `$.${inner}` : `${path}.${inner}`.replace(/\.$/, '');
          return [{ path: full, value: details?.value, expected: err instanceof Error ? err.message : String(err) }];
        }
        return [];
      },
    },
    default: DEFAULT_OVERLAY_CONFIG,
    doc: "The overlay (masters publish it; agents follow the masters' copy). Default DC/OS's: dcos 9.0.0.0/8 per-agent /24, dcos6 fd01:b::/64 per-agent /80, VTEP 44.128.0.0/20 and fd01:a::/64, vtep1024, VNI 1024, port 64000, MTU 1420; named VIPs from 11.0.0.0/8 and fd01:c::/64 (vipSubnet, vipSubnet6).",
  },
  log: {
    kind: {
      type: 'object',
      fields: {
        level: { kind: { type: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }, default: 'info', doc: 'Log level. Default info. LASHUP_LOG_LEVEL overrides it.' },
      },
    },
    doc: 'Logging.',
  },
};

function defaultsOf(fields: Record<string, Field>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    if (field.kind.type === 'object') out[key] = defaultsOf(field.kind.fields);
    else if (field.default !== undefined) out[key] = structuredClone(field.default);
  }
  return out;
}

function describeKind(kind: Kind): string {
  switch (kind.type) {
    case 'string':
      return kind.patternText ?? 'a string';
    case 'ip':
      return 'an IPv4 or IPv6 address';
    case 'integer':
      return `an integer from ${kind.min} to ${kind.max}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${kind.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'strings':
      return `a list of ${kind.itemText ?? 'strings'}${kind.min > 0 ? ` (at least ${kind.min})` : ''}`;
    case 'object':
      return 'an object';
    case 'custom':
      return kind.describe;
  }
}

function check(fields: Record<string, Field>, value: unknown, path: string, problems: ConfigProblem[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ path, value, expected: 'an object' });
    return {};
  }
  const input = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    if (!(key in fields)) problems.push({ path: `${path}.${key}`, value: input[key], expected: `no such setting; valid here: ${Object.keys(fields).join(', ')}` });
  }
  for (const [key, field] of Object.entries(fields)) {
    const p = `${path}.${key}`;
    const v = input[key];
    if (v === undefined) {
      if (field.kind.type === 'object') out[key] = check(field.kind.fields, {}, p, problems);
      else if (field.default !== undefined) out[key] = structuredClone(field.default);
      else if (field.optional !== true) problems.push({ path: p, value: undefined, expected: `${describeKind(field.kind)} (required)` });
      continue;
    }
    const kind = field.kind;
    const bad = (): void => {
      problems.push({ path: p, value: v, expected: describeKind(kind) });
    };
    switch (kind.type) {
      case 'string':
        if (typeof v !== 'string' || v.length === 0 || (kind.pattern !== undefined && !kind.pattern.test(v))) bad();
        else out[key] = v;
        break;
      case 'ip':
        if (typeof v !== 'string' || !isIp(v)) bad();
        else out[key] = v;
        break;
      case 'integer':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < kind.min || v > kind.max) bad();
        else out[key] = v;
        break;
      case 'boolean':
        if (typeof v !== 'boolean') bad();
        else out[key] = v;
        break;
      case 'enum':
        if (typeof v !== 'string' || !kind.values.includes(v)) bad();
        else out[key] = v;
        break;
      case 'strings':
        if (!Array.isArray(v) || v.length < kind.min) bad();
        else {
          v.forEach((item, i) => {
            if (typeof item !== 'string' || item.length === 0 || (kind.item !== undefined && !kind.item.test(item)))
              problems.push({ path: `${p}[${i}]`, value: item, expected: kind.itemText ?? 'a non-empty string' });
          });
          out[key] = [...(v as string[])];
        }
        break;
      case 'object':
        out[key] = check(kind.fields, v, p, problems);
        break;
      case 'custom': {
        const found = kind.check(v, p);
        problems.push(...found);
        if (found.length === 0) out[key] = field.default !== undefined && typeof field.default === 'object' && !Array.isArray(field.default) ? { ...(field.default as object), ...(v as object) } : v;
        break;
      }
    }
  }
  return out;
}

/** Validates parsed JSON; returns the full config with defaults, or throws a ConfigError listing every problem. */
export function parseConfig(value: unknown): DaemonConfig {
  const problems: ConfigProblem[] = [];
  const out = check(CONFIG_SCHEMA, value, '$', problems);
  if (problems.length === 0) {
    const c = out as unknown as DaemonConfig;
    if (c.role === 'master' && !c.masters.includes(c.name)) {
      problems.push({ path: '$.masters', value: c.masters, expected: `a list that includes this master's own name ${JSON.stringify(c.name)}` });
    }
  }
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${p.path} = ${p.value === undefined ? '(missing)' : JSON.stringify(p.value)}: expected ${p.expected}`);
    throw new ConfigError(ConfigErrorCode.Invalid, `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`, problems);
  }
  return out as unknown as DaemonConfig;
}

/**
 * Blanks lines whose first non-blank characters are `//`: the shipped example configuration
 * (/etc/lashup/config.json.example) explains each setting in such lines. Whole lines only, so the
 * rule cannot touch a value (a JSON string never spans lines) and is written here rather than
 * pulling in a JSON-with-comments parser; blanked, not removed, so JSON.parse's error positions
 * still point at the operator's line.
 */
export function stripLineComments(text: string): string {
  return text.replace(/^[ \t]*\/\/.*$/gm, '');
}

/** Parses and validates a config file's text (JSON; whole-line `//` comments allowed). */
export function parseConfigText(text: string, source = 'config'): DaemonConfig {
  let value: unknown;
  try {
    value = JSON.parse(stripLineComments(text));
  } catch (err) {
    const problem = { path: '$', value: text.slice(0, 40), expected: `valid JSON (${err instanceof Error ? err.message : String(err)})` };
    throw new ConfigError(ConfigErrorCode.Invalid, `${source} is not valid JSON: ${problem.expected}`, [problem]);
  }
  return parseConfig(value);
}

/** The defaults of every optional setting (required ones absent). */
export function configDefaults(): Record<string, unknown> {
  return defaultsOf(CONFIG_SCHEMA);
}

/** Every setting with its meaning and default, one line each (for `--help` and the README). */
export function configReference(): string[] {
  const lines: string[] = [];
  const walk = (fields: Record<string, Field>, prefix: string): void => {
    for (const [key, field] of Object.entries(fields)) {
      const path = `${prefix}${key}`;
      if (field.kind.type === 'object') {
        walk(field.kind.fields, `${path}.`);
        continue;
      }
      const def = field.default === undefined ? (field.optional === true ? 'optional' : 'required') : `default ${JSON.stringify(field.default).slice(0, 60)}`;
      lines.push(`${path} (${describeKind(field.kind)}; ${def}): ${field.doc}`);
    }
  };
  walk(CONFIG_SCHEMA, '');
  return lines;
}
