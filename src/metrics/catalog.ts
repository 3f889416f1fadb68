/**
 * Every metric lashup exports from its components' stats objects, described: its Prometheus type
 * and help text, and for records keyed by data (operations, error codes, causes) the label that
 * carries the key. A stats field without a description here is not exported and is reported by
 * `undocumentedFields` (a test keeps that list empty), so no metric ships without HELP and TYPE.
 *
 * Names follow Prometheus conventions: `lashup_<component>_<field>` in snake case, counters end in
 * `_total`, durations are exported in seconds (fields in milliseconds are converted), booleans as
 * 0/1 gauges.
 */

export type MetricKind = 'counter' | 'gauge';

/** A number (or boolean) field. */
export interface FieldSpec {
  kind: MetricKind;
  help: string;
  /** The field holds milliseconds: exported in seconds, `_ms` becoming `_seconds`. */
  ms?: boolean;
  /** A name other than the field's, without prefix or `_total`. */
  name?: string;
}

/** A record keyed by data: one series per key, the key in `label` (`{ code: count }`). */
export interface KeyedSpec {
  kind: MetricKind;
  help: string;
  keyed: string;
  /** Records of records (`{ op: { ok, failed } }`): the inner key's label. */
  inner?: string;
  name?: string;
}

/** A nested stats object: its fields exported under `<component>_<field>_`. */
export interface NestedSpec {
  nested: ComponentSpec;
}

export type Spec = FieldSpec | KeyedSpec | NestedSpec;
export type ComponentSpec = Record<string, Spec>;

const counter = (help: string, extra: Partial<FieldSpec> = {}): FieldSpec => ({ kind: 'counter', help, ...extra });
const gauge = (help: string, extra: Partial<FieldSpec> = {}): FieldSpec => ({ kind: 'gauge', help, ...extra });

const INBOUND: ComponentSpec = {
  admitted: counter('Inbound connections admitted before authentication.'),
  refusedPerHost: counter('Inbound connections refused: their host already held the per-host number of unauthenticated ones.'),
  refusedStrangers: counter('Inbound connections refused: strangers already held their number of unauthenticated ones.'),
  refusedBusy: counter('Inbound connections refused: the total number of unauthenticated ones was in progress.'),
  pending: gauge('Unauthenticated inbound connections now.'),
  expired: counter('Admission tickets reclaimed after their time limit without being settled.'),
};

/** The components as the daemon names them in /metrics. */
export const METRIC_CATALOG: Record<string, ComponentSpec> = {
  membership: {
    packetsReceived: counter('SWIM packets received.'),
    packetsSent: counter('SWIM packets sent.'),
    packetsDropped: counter('SWIM packets that failed to decode or spoke another version.'),
    unknownMessages: counter('Messages of unknown types inside valid packets, skipped.'),
    misdirectedPings: counter('Pings naming another member than this one (a stale address), not answered.'),
    probes: counter('Direct probes sent.'),
    probesFailed: counter('Probes that got no ack, direct or indirect.'),
    indirectProbes: counter('Indirect probes asked of other members.'),
    reliableProbes: counter('Probes sent over the reliable (stream) fallback.'),
    reliableProbeRetries: counter('Stream pings opened again because the first open failed with a reset (the connection it went out on was being torn down).'),
    acksReceived: counter('Acks received.'),
    nacksReceived: counter('Nacks received (an indirect prober could not reach the target).'),
    suspicionsStarted: counter('Members this node began to suspect.'),
    suspicionsRefused: counter(
      "Suspicions begun or shortened because this node's probe of the member was refused (nothing listens on its port): they end after suspicionMult * probeIntervalMs, without the log10(N) factor.",
    ),
    failuresDeclared: counter('Members this node declared failed.'),
    refutations: counter('Suspicions of this node that it refuted.'),
    directRefutations: counter('Packets that carried a refutation of this node straight to a member (besides gossip; at most one round a second).'),
    lastChancePings: counter('Suspicions that ran out and sent the member one last ping with the accusation before declaring it failed (not for refused ones).'),
    staleCorrections: counter('Alive messages sent back to a node that passed on an accusation of this node it had already refuted.'),
    identityConflicts: counter('Two members claiming one name from different addresses.'),
    syncsStarted: counter('State syncs (push-pull) started.'),
    syncsCompleted: counter('State syncs completed.'),
    catchUpSyncs: counter('Syncs brought forward because the previous one taught this node new members.'),
    syncsFailed: counter('State syncs that failed.'),
    syncMessagesDropped: counter('Malformed sync messages or streams: the sync was abandoned.'),
    joinAttempts: counter('Join attempts against the seeds.'),
    reaped: counter('Failed or left members forgotten after the tombstone timeout.'),
  },
  udp: {
    packetsSent: counter('Encrypted UDP datagrams sent.'),
    bytesSent: counter('Bytes of encrypted UDP datagrams sent.'),
    packetsReceived: counter('Encrypted UDP datagrams received.'),
    bytesReceived: counter('Bytes of encrypted UDP datagrams received.'),
    droppedMalformed: counter('Datagrams dropped: shorter than the header or longer than the largest datagram.'),
    droppedDecrypt: counter('Datagrams dropped: no cluster key authenticates them (tampered, another cluster, wrong key).'),
    droppedStale: counter('Datagrams dropped: their time is outside the replay window.'),
    droppedReplay: counter('Datagrams dropped: their nonce was seen within the replay window.'),
    droppedReflected: counter('Datagrams dropped: they claim this node as sender (its own datagram reflected).'),
    sendErrors: counter('Sends that failed locally (unreachable network, buffer full).'),
  },
  libp2p: {
    dials: counter('libp2p dials.'),
    dialFailures: counter('libp2p dials that failed.'),
    handshakeFailures: counter('Connections that failed the pre-shared-key or noise handshake.'),
    streamsOpened: counter('Streams opened.'),
    streamsAccepted: counter('Streams accepted.'),
    framesSent: counter('Frames sent on streams.'),
    framesReceived: counter('Frames received on streams.'),
    oversizedFrames: counter('Frames longer than the limit: the stream was reset.'),
    published: counter('Messages published on gossipsub.'),
    publishedToNobody: counter('Publishes that reached no peer although one looked ready (the message waits for anti-entropy).'),
    received: counter('Messages received from gossipsub.'),
    inbound: { nested: INBOUND },
    keepsOut: gauge('Kept connections this node asked for, now.'),
    keepsIn: gauge('Kept connections other nodes asked for and this node accepted, now.'),
    keepsRefused: counter('Keeps this node refused (its inbound limit).'),
    keepsAsked: counter('Keeps this node asked of its peers.'),
    keepsFailed: counter('Keeps asked that got no answer (dial failed or timed out, stream closed first).'),
    keepsSlow: counter('Keeps asked whose answer or failure took more than 5 s (a peer or this node overloaded).'),
    idleClosed: counter('Idle short-lived connections closed.'),
    connectionsOpened: counter('libp2p connections opened, inbound and outbound (each a full handshake at both ends).'),
    connections: gauge('Open libp2p connections, now.'),
    outbox: gauge('Messages waiting for a subscriber of their topic that gossipsub can send to, now.'),
    outboxDropped: counter('Messages dropped from a full outbox.'),
    gossipStreamsReopened: counter('Gossipsub streams to a peer reopened on another connection after theirs closed (gossipsub does not; sends to the peer were dropped until it did).'),
    peerStoreShortcut: {
      nested: {
        skipped: counter("libp2p's per-stream peer-store merges answered from memory (the peer's record already listed the protocol)."),
        merged: counter("libp2p's per-stream peer-store merges that ran (a peer's first stream of a protocol, or the first after 10 minutes or a change of its record)."),
      },
    },
  },
  kv: {
    localUpdates: counter('Store updates made on this node.'),
    remoteDeltasReceived: counter('Store deltas received from other nodes.'),
    remoteDeltasApplied: counter('Remote store deltas that changed something.'),
    remoteDeltasRedundant: counter('Remote store deltas that changed nothing (duplicates, already known).'),
    inboundDropped: counter('Remote store deltas dropped because the inbound queue was full.'),
    decodeErrors: counter('Remote store deltas that failed to decode.'),
    keyLimitDrops: counter('Remote store deltas for a new key beyond the key limit, dropped.'),
    writesRefused: counter("Remote writes refused by the admission check: another member's write over an agent's own rows."),
    lwwConflicts: counter('Last-writer-wins writes with one marker and different values met in a join.'),
    repairsApplied: counter('Anti-entropy repairs applied to the store.'),
    subscriptionEvents: counter('Change events delivered to store subscribers.'),
  },
  kv_journal: {
    recordsAppended: counter("Records appended to the store's journal (this node's changes and those it received)."),
    bytesWritten: counter("Bytes written to the store's journal."),
    fsyncs: counter("fsyncs of the store's journal that completed."),
    fsyncMsTotal: counter("Time the journal's fsyncs took, summed (run off the event loop; divided by fsyncs, the mean).", { ms: true, name: 'fsync_time_ms' }),
    fsyncMsMax: gauge("The longest fsync of the store's journal since start (a slow or failing disk).", { ms: true, name: 'fsync_max_ms' }),
    snapshots: counter('Snapshots of the store written (the journal compacted).'),
    writeErrors: counter("Journal appends, fsyncs and snapshots that failed (their records are kept and written again; see the daemon's log)."),
  },
  anti_entropy: {
    roundsStarted: counter('Anti-entropy rounds started.'),
    roundsEqual: counter('Anti-entropy rounds that found both stores equal.'),
    roundsRepaired: counter('Anti-entropy rounds that repaired differences.'),
    roundsFailed: counter('Anti-entropy rounds that failed.'),
    roundsFailedOpen: counter('Anti-entropy rounds that failed for want of a stream to the peer (unreachable, refused, dial timed out).'),
    roundsFailedDeadline: counter('Anti-entropy rounds that opened but did not end within the round deadline.'),
    roundsFailedClosed: counter('Anti-entropy rounds the peer closed or reset first.'),
    roundsServed: counter('Anti-entropy rounds this node answered.'),
    catchUpRounds: counter('Rounds brought forward because the previous one found differences.'),
    retriesAfterFailure: counter('Rounds brought forward because the previous one failed (a few in a row at most).'),
    keysCompared: counter('Keys sent in want lists (their digests differed).'),
    keysRepaired: counter('Keys this node repaired or helped repair.'),
    bytesSent: counter('Anti-entropy bytes sent.'),
    bytesReceived: counter('Anti-entropy bytes received.'),
    messagesDropped: counter('Malformed anti-entropy messages dropped.'),
  },
  peers: {
    chosen: counter('Peers chosen to keep a connection to.'),
    dropped: counter('Kept peers dropped: gone from membership, rotated out, refused or lost.'),
    refused: counter('Keeps refused by the remote (its inbound limit).'),
    lost: counter('Kept connections that failed or closed.'),
    rotations: counter('Kept peers replaced by another member (rotation).'),
    kept: gauge('Peers this node keeps a connection to now (random ones and must-keep ones).'),
    established: gauge('Kept peers whose connection is up now (kept ones whose keep was answered).'),
    keepBackoffs: counter('Pauses before the next keep after two or more keeps failed in a row (a busy node or busy peers).'),
  },
  node: {
    repairs: counter('Anti-entropy repairs started with a member that came back from failed.'),
  },
  overlay_config: {
    updates: counter('Valid overlay configurations taken from the store.'),
    problems: { kind: 'counter', help: 'Overlay configurations from the store ignored as invalid, by error code.', keyed: 'code' },
  },
  allocator: {
    raftMessagesSent: counter('Raft messages sent.'),
    raftMessagesDropped: counter('Raft messages that could not be sent.'),
    raftDecodeErrors: counter('Raft messages that failed to decode.'),
    raftSenderRefused: counter("Raft messages dropped because they claimed a master's name from another identity than the pinned one."),
    leaseRequests: counter('Lease requests this master answered.'),
    leaseRedirects: counter('Lease requests redirected to the Raft leader.'),
    identityRefused: counter("Allocations refused because the request came from another identity than the agent's pinned one."),
    leaseForwarded: counter('Allocations this follower forwarded to the Raft leader for an agent.'),
    leaseForwardFailed: counter('Forwarded allocations the leader did not answer in time (the agent was redirected to it).'),
    allocationReadsRefused: counter("Agents' allocation reads (the list, one agent's) refused because this master had not caught up with the allocator's log (just started, or an election)."),
    leaseForwardRefused: counter('Forwarded allocations refused because they did not come from a master (LASHUP_ERR_IPAM_FORWARD_REFUSED).'),
  },
  lease: {
    requests: counter('Lease requests sent to the masters.'),
    redirects: counter('Lease requests redirected to another master.'),
    failures: counter('Lease requests that failed (no quorum, unreachable).'),
    refusals: counter('Leases refused by the allocator (exhaustion, configuration).'),
    confirms: counter('Lease confirmations asked of the masters.'),
    lost: counter('Leases the masters no longer held (released while this agent ran).'),
    held: gauge('Agents: 1 when this agent holds a lease (derived at each scrape).'),
  },
  dataplane: {
    applies: counter('Reconciler applies.'),
    failedApplies: counter('Applies that ended with a failed operation or listing.'),
    lastApplyMs: gauge('Duration of the last apply.', { ms: true }),
    maxApplyMs: gauge('Longest apply since start.', { ms: true }),
    totalApplyMs: counter('Time spent applying.', { ms: true, name: 'apply_time_ms' }),
    ops: { kind: 'counter', help: 'Kernel operations by operation and result.', keyed: 'op', inner: 'result' },
    driftCorrected: counter('Operations that repaired a difference found by a notification or a resync.'),
    resyncs: counter('Full kernel resyncs.'),
    resyncReasons: { kind: 'counter', help: 'Full kernel resyncs by cause.', keyed: 'reason', name: 'resyncs_by_reason' },
    notifications: counter('Kernel notifications received.'),
    notificationLosses: counter('Kernel notification losses (socket overflows, helper restarts); each forces a resync.'),
    conflicts: gauge('Desired entries blocked by a foreign kernel object in their slot, now.'),
    invalid: gauge('Desired entries naming a device lashup does not manage, now.'),
    waiting: gauge('Desired entries waiting for their device, now.'),
    shadowed: gauge("Desired entries hidden by another group's entry for the same key, now."),
    converged: gauge('1 when the last apply left nothing to do.'),
  },
  overlay: {
    remoteAgents: gauge('Remote agents this agent routes to, now.'),
    recomputes: counter('Route recomputations from the store.'),
    groupChanges: counter('Per-agent route groups handed to the reconciler (changed or removed).'),
    problems: { kind: 'gauge', help: 'Problems with store overlay entries, by error code, as of the last recomputation.', keyed: 'code' },
    publishes: counter('Times this agent (re)published its own overlay entry.'),
    leaseLost: counter("Times the masters said this agent's lease no longer held."),
    untrusted: gauge("Other agents' overlay entries not programmed because they do not match the masters' allocations, now."),
    announcedOnly: gauge("Remote agents routed from the masters' announcement of their allocation alone, their own entry not arrived yet, now."),
    announcedExpired: counter('Agents routed from an allocation announcement whose own entry did not arrive within the window (30 s); their routes were removed.'),
  },
  master_identities: {
    pinned: gauge('Masters whose identity (libp2p peer id) this node has pinned, now.'),
    mismatches: counter("Times a member used a master's name with another identity than the pinned one (not taken for that master)."),
  },
  row_admission: {
    refused: { kind: 'counter', help: "Remote writes over agents' own rows refused, by reason (unsigned, forged, replayed, removal).", keyed: 'reason' },
    unknownOwner: counter('Changed rows let through because their owner (or its pinned identity) is not known here yet.'),
    verified: counter('Row signatures checked.'),
  },
  allocation_view: {
    refreshes: counter("Fetches of the masters' allocations that succeeded."),
    refreshFailures: counter("Fetches of the masters' allocations that failed (the last known ones stay in use)."),
    peeks: counter('Single allocations asked of a master for agents whose entries could not be vouched for yet.'),
    invalid: counter('Malformed allocations from a master, dropped.'),
    announced: counter("Allocations learnt from the masters' signed announcements in the store (no ask needed)."),
    announcementsRefused: counter(
      "Allocation announcements not taken: unsigned, not signed by the pinned identity of the master they name, malformed, or sharing an address or block with another agent's known allocation (the masters are asked instead).",
    ),
    announcementsStale: counter("Allocation announcements older than a minute, left to the masters' answers (normal at start)."),
    announcementsUnderlayInvalid: counter(
      'Allocation announcements taken without their underlay address, which was not an IP address (logged with LASHUP_ERR_ALLOCATION_ANNOUNCEMENT_UNDERLAY_INVALID).',
    ),
    allocations: gauge('Allocations known to this agent now.'),
  },
  firewall: {
    applies: counter("nftables scripts applied to lashup's tables."),
    applyFailures: counter('nftables applies that failed (retried with backoff).'),
    resyncs: counter("Listings of lashup's nftables tables that found them as desired."),
    drift: counter("Times lashup's nftables tables were found changed by someone else and put back."),
    removals: counter("Removals of lashup's nftables tables (leaving)."),
    converged: gauge("1 when lashup's nftables tables hold the desired rules."),
    shellStarts: counter("Starts of the daemon's long-lived `nft -i` (VIP updates, table listings); more than one means a shell died or hung."),
    shellListingFailures: counter('Table listings the `nft -i` could not give (it died, hung or refused); each was taken by a spawned `nft list` instead.'),
    dropped: {
      kind: 'counter',
      help: 'Packets of new connections dropped by the isolation policy, by source (a network, or hosts) and destination (a network, or outside); read at every firewall resync and policy request, reset when a policy change replaces the tables.',
      keyed: 'from',
      inner: 'to',
      name: 'dropped_packets',
    },
  },
  cni: {
    adds: counter('CNI ADD requests served.'),
    dels: counter('CNI DEL requests served.'),
    checks: counter('CNI CHECK requests served.'),
    gcCollected: counter('Container address leases freed by CNI GC.'),
    exhausted: counter("CNI ADDs refused because the network's half was full."),
    badRequests: counter('CNI requests refused as malformed.'),
    notReady: counter('CNI requests refused because the agent had no lease yet.'),
    persistFailures: counter('Container lease file writes that failed (the request was refused).'),
    sweepUncertain: counter('Sweeps that kept a lease because its network namespace could not be examined.'),
  },
  docker: {
    reachable: gauge('Agents: 1 when the last sync reached the local Docker daemon.'),
    syncs: counter('Comparisons of the Docker networks with the lease.'),
    unreachable: counter('Syncs that found no Docker daemon answering (absent, stopped, or slower than docker.timeoutMs).'),
    syncFailures: counter('Syncs that failed part way (a Docker request failed or timed out).'),
    created: counter("lashup's Docker networks created."),
    recreated: counter("lashup's Docker networks removed and made again because they differed from the lease."),
    removed: counter("lashup's Docker networks removed because the lease no longer covers them."),
    conflicts: gauge("Docker networks in conflict now: a foreign network with an overlay network's name, or lashup's network changed or stale with containers attached."),
    networks: gauge("lashup's Docker networks present as the lease calls for, now."),
    used: { kind: 'gauge', help: "Containers attached to lashup's Docker network (each holds one address of the agent's Docker half).", keyed: 'network' },
    capacity: { kind: 'gauge', help: "Addresses the agent's Docker half offers containers.", keyed: 'network' },
    tasks: gauge("Named tasks (containers labelled lashup.task and lashup.framework on lashup's networks) at the last sync."),
    badLabels: gauge('Labelled containers left out of the names at the last sync: their labels are not valid (LASHUP_ERR_DOCKER_TASK_LABEL).'),
    events: counter('Docker daemon events (container start/stop, network connect/disconnect) that started a sync.'),
    badEvents: counter('Lines of the Docker events stream that were not events (skipped; LASHUP_ERR_DOCKER_BAD_EVENT logged once per stream).'),
  },
  dns: {
    listening: gauge('1 when the DNS server listens on its addresses.'),
    listenFailures: counter('Starts where the DNS server could not listen (the daemon runs on without it).'),
    gatewaysPending: gauge('Bridge gateway addresses the DNS server should listen on but cannot bind yet (the bridge is not up; retried every second).'),
    queries: { kind: 'counter', help: 'DNS queries answered, by query type and result (NOERROR, NXDOMAIN, REFUSED, SERVFAIL, FORWARDED).', keyed: 'type', inner: 'result' },
    malformed: counter('DNS messages that did not decode or could not be answered (answered FORMERR or dropped).'),
    forwardErrors: counter('Queries to upstream resolvers that failed (timeout, error).'),
    truncated: counter('DNS answers sent truncated: larger than the client accepts over UDP.'),
    records: gauge('Task records in the DNS catalog now.'),
    forwardsShed: counter('Queries outside the zone answered SERVFAIL at once because 256 were already waiting for upstreams.'),
  },
  vips: {
    vips: gauge('VIPs (address, protocol and port) this node knows with an address now; agents program them.'),
    backends: gauge('Backends of those VIPs now (containers on agents membership does not declare failed).'),
    pending: gauge('Named VIPs declared by some task that have no address from the masters yet.'),
    badDeclarations: {
      kind: 'gauge',
      help: "VIP declarations in the store's task rows left out now (bad port, name or address; an address VIP inside an overlay subnet or the VIP range), by code.",
      keyed: 'code',
    },
    refusedDeclarations: { kind: 'counter', help: 'VIP declarations refused where they came in (tasks API, CNI ADD), by code.', keyed: 'code' },
    refusedAddresses: gauge("Named VIP addresses in the store left out now: outside the overlay's VIP ranges."),
    allocated: gauge('Masters (the leader): named VIPs holding an address.'),
    assignments: counter('Masters: named VIPs the leader asked the allocator an address for.'),
    releases: counter('Masters: named VIP addresses the leader released after their grace period.'),
    allocationFailures: counter('Masters: named VIPs the allocator had no free address for (the VIP range is exhausted).'),
    rules: {
      nested: {
        fullApplies: counter('VIP rule transactions that replaced the lashup_vips tables whole (first apply, after a failure or drift, a hairpin change).'),
        incrementalApplies: counter("VIP rule transactions that touched only the changed VIPs' chains and map elements."),
        applyFailures: counter('VIP rule transactions that failed (retried with backoff, then whole).'),
        resyncs: counter('Listings of the VIP tables that found them as last applied.'),
        drift: counter('Times the VIP tables were found changed by someone else and replaced.'),
        converged: gauge('1 when the VIP tables hold the desired VIPs.'),
      },
    },
  },
  cni_conflist: {
    writes: counter('CNI network configuration files written.'),
    restored: counter('CNI network configuration files restored after someone else removed or changed them.'),
    failures: counter('CNI network configuration file writes that failed.'),
  },
  daemon: {
    startedAtMs: gauge('Start time of the daemon since the Unix epoch.', { ms: true, name: 'start_time_ms' }),
    releases: counter('Agent allocations released through this master.'),
    releasesRefused: counter('Releases refused because the agent may still be running.'),
    codeCacheUsed: gauge(
      "1 when this process started from the build's V8 code cache; 0 when it compiled its code (no cache, one for another build, Node or Node flags, or not run from the bundle), which costs about 100 ms of CPU per start.",
    ),
  },
  api: {
    requests: counter('HTTP API requests.'),
    clientErrors: counter('HTTP API requests answered with a 4xx status.'),
    serverErrors: counter('HTTP API requests answered with a 5xx status.'),
    watchers: gauge('Open store watch streams.'),
    uiPages: gauge('Status pages (/ui) open now, by their event streams.'),
    uiStateFailures: counter('Status page states that could not be assembled (the page showed the problem instead).'),
  },
  // Derived by the daemon from its state at each scrape (not stats objects).
  members: {
    byState: { kind: 'gauge', help: 'Members by state, as this node sees them (this node included).', keyed: 'state', name: '' },
  },
  usage: {
    blocksUsed: { kind: 'gauge', help: 'Masters: per-agent blocks the allocator has handed out, by overlay network and address family.', keyed: 'network', inner: 'family' },
    blocksCapacity: { kind: 'gauge', help: 'Masters: per-agent blocks an overlay network holds, by address family.', keyed: 'network', inner: 'family' },
    addressesUsed: {
      kind: 'gauge',
      help: "Container addresses in use, by overlay network and kind (cni, docker): an agent's own, a master's the sum of every agent's.",
      keyed: 'network',
      inner: 'kind',
    },
    addressesCapacity: { kind: 'gauge', help: 'Container addresses the blocks behind addresses_used hold, by overlay network and kind.', keyed: 'network', inner: 'kind' },
  },
  raft: {
    leader: gauge('Masters: 1 when this master is the Raft leader.'),
    leaderKnown: gauge('Masters: 1 when this master knows a Raft leader (itself included).'),
    term: gauge('Masters: the current Raft term.'),
  },
};
