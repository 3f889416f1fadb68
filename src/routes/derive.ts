/**
 * The desired dataplane state from the store's overlay entries and the node's own lease. Pure:
 * the same inputs give the same output on every node, whatever order entries arrived in, so
 * conflicting claims (possible only from stale or forged entries: the allocator never hands out
 * a block twice) are settled the same way everywhere: the lower VTEP IP keeps the contested
 * subnet, MAC or IPv6 VTEP address.
 *
 * The remote part is returned per agent (group `agent/<vtepIp>`), so that the daemon hands the
 * reconciler only the agents that changed.
 */
import { parseIp } from '../common/index.js';
import type { DesiredState } from '../dataplane/index.js';
import type { Lease } from '../ipam/index.js';
import { localState, remoteState, type LocalNetwork, type VtepConfig } from '../vxlan/index.js';
import { parseOverlayEntry, type OverlayEntry } from './entry.js';
import { RoutesError, RoutesErrorCode } from './errors.js';

export interface LocalInput {
  /** This node's underlay address (the VXLAN source). */
  underlayIp: string;
  lease: Lease;
  /** Prefix length of the VTEP subnet (20 for 44.128.0.0/20). */
  vtepPrefixLen: number;
  /** Prefix length of the IPv6 VTEP subnet (64 for fd01:a::/64). */
  vtepPrefixLen6?: number;
}

/** The VTEP with its addresses and each leased network's bridges with their gateways. */
export function localDesired(config: VtepConfig, input: LocalInput): DesiredState {
  const { lease } = input;
  const networks: LocalNetwork[] = Object.keys(lease.networks)
    .sort()
    .map((name) => {
      const n = lease.networks[name] ?? {};
      const net: LocalNetwork = { name };
      if (n.mesos !== undefined) Object.assign(net, { mesos: n.mesos, mesosGateway: n.mesosGateway, docker: n.docker, dockerGateway: n.dockerGateway });
      if (n.mesos6 !== undefined) Object.assign(net, { mesos6: n.mesos6, mesosGateway6: n.mesosGateway6, docker6: n.docker6, dockerGateway6: n.dockerGateway6 });
      return net;
    });
  try {
    return localState(config, {
      underlayIp: input.underlayIp,
      vtepAddress: `${lease.vtepIp}/${input.vtepPrefixLen}`,
      ...(lease.vtepIp6 !== undefined && input.vtepPrefixLen6 !== undefined ? { vtepAddress6: `${lease.vtepIp6}/${input.vtepPrefixLen6}` } : {}),
      networks,
    });
  } catch (err) {
    throw new RoutesError(RoutesErrorCode.InvalidLocal, `the local lease cannot be programmed: ${err instanceof Error ? err.message : String(err)}`, { agent: lease.agent });
  }
}

/** The group name of a remote agent's entries. */
export const agentGroup = (vtepIp: string): string => `agent/${vtepIp}`;

export interface RemoteResult {
  /** Desired entries per remote agent, keyed by `agentGroup(vtepIp)`. */
  groups: Map<string, DesiredState>;
  /** Entries left out (malformed) and claims refused (conflicts), as typed errors. */
  problems: RoutesError[];
}

interface Agent {
  vtepIp: string;
  agentIp: string;
  vtepMac: string;
  vtepIp6?: string;
  subnets: string[];
  networks: string[];
}

function compareIp(a: string, b: string): number {
  const x = parseIp(a)?.bytes ?? new Uint8Array();
  const y = parseIp(b)?.bytes ?? new Uint8Array();
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return 0;
}

/**
 * Parsed entries by entry object and place (network and key). remoteDesired parses every entry
 * of every network at each of the overlay agent's recomputations, though a store change touches
 * one or two: parsing (addresses, MACs, subnets canonicalised) was about two thirds of
 * remoteDesired's time in the e2e benchmark's joins. Store values are never mutated in place, so
 * an entry object parses the same at the same place for its whole life; the WeakMap lets go of
 * it with the object. Malformed entries are parsed again each time (rare; their error is raised
 * where it was).
 */
const parsedEntries = new WeakMap<object, Map<string, { vtepIp: string; entry: OverlayEntry }>>();

function parsedEntry(network: string, key: string, raw: unknown): { vtepIp: string; entry: OverlayEntry } {
  if (raw === null || typeof raw !== 'object') return parseOverlayEntry(network, key, raw);
  const place = `${network}\n${key}`;
  let byPlace = parsedEntries.get(raw);
  const known = byPlace?.get(place);
  if (known !== undefined) return known;
  const parsed = parseOverlayEntry(network, key, raw);
  if (byPlace === undefined) {
    byPlace = new Map();
    parsedEntries.set(raw, byPlace);
  }
  byPlace.set(place, parsed);
  return parsed;
}

/**
 * Every remote agent's route, neighbour and FDB entries. `overlays` maps a network name to the
 * plain value of its store key (VTEP IP -> entry). Entries of `selfVtepIp`, and remote claims on
 * one of `selfSubnets`, are left out. With `states`, an agent's unchanged state is the object the
 * last call returned.
 */
export function remoteDesired(
  config: Pick<VtepConfig, 'name'>,
  selfVtepIp: string | undefined,
  overlays: ReadonlyMap<string, unknown>,
  selfSubnets: readonly string[] = [],
  states?: RemoteStateCache,
): RemoteResult {
  const problems: RoutesError[] = [];
  const agents = new Map<string, Agent>();
  for (const network of [...overlays.keys()].sort()) {
    const value = overlays.get(network);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      problems.push(new RoutesError(RoutesErrorCode.InvalidEntry, `overlay/${network} is not a map of VTEP IP to entry`, { network }));
      continue;
    }
    for (const key of Object.keys(value).sort(compareIp)) {
      let parsed: { vtepIp: string; entry: OverlayEntry };
      try {
        parsed = parsedEntry(network, key, (value as Record<string, unknown>)[key]);
      } catch (err) {
        if (err instanceof RoutesError) problems.push(err);
        else throw err;
        continue;
      }
      const { vtepIp, entry } = parsed;
      if (vtepIp === selfVtepIp) continue;
      let agent = agents.get(vtepIp);
      if (agent === undefined) {
        agent = { vtepIp, agentIp: entry.agentIp, vtepMac: entry.vtepMac, subnets: [], networks: [] };
        if (entry.vtepIp6 !== undefined) agent.vtepIp6 = entry.vtepIp6;
        agents.set(vtepIp, agent);
      } else if (agent.agentIp !== entry.agentIp || agent.vtepMac !== entry.vtepMac) {
        problems.push(
          new RoutesError(
            RoutesErrorCode.Conflict,
            `overlay/${network}[${vtepIp}] gives agentIp ${entry.agentIp} and MAC ${entry.vtepMac}, but ${agent.networks[0]} gives ${agent.agentIp} and ${agent.vtepMac}; the first network's values are used`,
            { network, vtepIp },
          ),
        );
      }
      if (entry.vtepIp6 !== undefined && agent.vtepIp6 === undefined) agent.vtepIp6 = entry.vtepIp6;
      agent.networks.push(network);
      if (entry.subnet !== undefined) agent.subnets.push(entry.subnet);
      if (entry.subnet6 !== undefined) {
        if (entry.vtepIp6 === agent.vtepIp6) agent.subnets.push(entry.subnet6);
        else
          problems.push(
            new RoutesError(
              RoutesErrorCode.Conflict,
              `overlay/${network}[${vtepIp}] gives VTEP IPv6 ${entry.vtepIp6}, but ${agent.networks[0]} gives ${agent.vtepIp6}; its subnet6 ${entry.subnet6} is left out`,
              { network, vtepIp },
            ),
          );
      }
    }
  }
  // Contested claims: walk agents by VTEP IP; the first claimant of a subnet, MAC or IPv6 VTEP keeps it.
  const subnetOwner = new Map<string, string>(selfSubnets.map((s) => [s, 'this node']));
  const macOwner = new Map<string, string>();
  const ip6Owner = new Map<string, string>();
  const groups = new Map<string, DesiredState>();
  for (const vtepIp of [...agents.keys()].sort(compareIp)) {
    const agent = agents.get(vtepIp) as Agent;
    const macHolder = macOwner.get(agent.vtepMac);
    if (macHolder !== undefined) {
      problems.push(
        new RoutesError(RoutesErrorCode.Conflict, `agent ${vtepIp} publishes VTEP MAC ${agent.vtepMac}, already used by ${macHolder}; its entries are left out`, {
          vtepIp,
          vtepMac: agent.vtepMac,
          holder: macHolder,
        }),
      );
      continue;
    }
    macOwner.set(agent.vtepMac, vtepIp);
    if (agent.vtepIp6 !== undefined) {
      const holder = ip6Owner.get(agent.vtepIp6);
      if (holder !== undefined) {
        problems.push(
          new RoutesError(RoutesErrorCode.Conflict, `agent ${vtepIp} publishes VTEP IPv6 ${agent.vtepIp6}, already used by ${holder}; its IPv6 entries are left out`, {
            vtepIp,
            vtepIp6: agent.vtepIp6,
            holder,
          }),
        );
        agent.subnets = agent.subnets.filter((s) => !s.includes(':'));
        delete agent.vtepIp6;
      } else ip6Owner.set(agent.vtepIp6, vtepIp);
    }
    const subnets: string[] = [];
    for (const subnet of agent.subnets) {
      const holder = subnetOwner.get(subnet);
      if (holder !== undefined) {
        problems.push(new RoutesError(RoutesErrorCode.Conflict, `agent ${vtepIp} claims ${subnet}, already held by ${holder}; that route is left out`, { vtepIp, subnet, holder }));
        continue;
      }
      subnetOwner.set(subnet, vtepIp);
      subnets.push(subnet);
    }
    const remote = { underlayIp: agent.agentIp, vtepIp, vtepMac: agent.vtepMac, subnets, ...(agent.vtepIp6 === undefined ? {} : { vtepIp6: agent.vtepIp6 }) };
    groups.set(agentGroup(vtepIp), states === undefined ? remoteState(config, remote) : states.state(config, remote));
  }
  states?.settle();
  return { groups, problems };
}

/**
 * The desired state of each remote agent, kept from one remoteDesired call to the next: an
 * agent whose inputs did not change gets the same object back, so the overlay agent's
 * comparison with what it programmed is a reference check and its state is not built again.
 * Building and comparing every agent's state was over half of a recomputation's remaining time
 * in the e2e benchmark's joins, and both grow with the cluster. Holds the states of the last
 * call only (bounded by the agents there are).
 */
export class RemoteStateCache {
  private current = new Map<string, DesiredState>();
  private next = new Map<string, DesiredState>();

  state(config: Pick<VtepConfig, 'name'>, remote: { underlayIp: string; vtepIp: string; vtepMac: string; vtepIp6?: string; subnets: string[] }): DesiredState {
    const key = [config.name, remote.underlayIp, remote.vtepIp, remote.vtepMac, remote.vtepIp6 ?? '', ...remote.subnets].join('\n');
    const state = this.current.get(key) ?? remoteState(config, remote);
    this.next.set(key, state);
    return state;
  }

  /** Ends a remoteDesired call: states it did not use are let go. */
  settle(): void {
    this.current = this.next;
    this.next = new Map();
  }
}
