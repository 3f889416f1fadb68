/**
 * The lab's invariants over one observation of the cluster (pure: the runner gathers the
 * observation, the world says what was injected). Two kinds:
 *
 * - Agreement (membership, kernel routes): whether each node's view is what the injected state
 *   implies. Disagreement is normal right after an event; the runner times how long it takes to
 *   end (convergence) and records a violation only when it outlasts the scenario's settleMs.
 * - Safety (no address held twice, no acknowledged lease changed or lost, no false failure):
 *   a single breach is a violation at once.
 *
 * What "expected" means, per pair of nodes, follows lashup's design: routes come from the
 * agents' overlay entries, which stay while an agent is down and go only when it is released;
 * so an agent must route to every other running agent it can reach, must not route to a
 * released agent's old subnet (unless another agent holds it now), and may or may not keep
 * routes to agents that are down or cut off.
 */
import type { World } from './world.js';

export interface LeaseView {
  agent: string;
  vtepIp: string;
  vtepMac: string;
  /** Per network: its IPv4 and IPv6 blocks. */
  networks: Record<string, { subnet?: string; subnet6?: string }>;
}

export interface Observation {
  atMs: number;
  /** Per observer that answered: member name -> state (alive, suspect, failed, left). */
  members: Map<string, Map<string, string>>;
  /** Per agent whose kernel was read: the destinations of lashup's routes (proto 76). */
  routes: Map<string, Set<string>>;
  /** Leases the agents stored (data/lease.json). */
  leases: Map<string, LeaseView>;
  /** The allocator's leases as a master that answered reports them (absent: none answered). */
  allocations?: Map<string, LeaseView>;
}

export type Invariant = 'membership' | 'routes' | 'unique-addresses' | 'leases-kept' | 'false-failure' | 'reachability' | 'names' | 'expectation' | 'step';

export const INVARIANTS: readonly Invariant[] = ['membership', 'routes', 'unique-addresses', 'leases-kept', 'false-failure', 'reachability', 'names', 'expectation', 'step'];

export interface Violation {
  atMs: number;
  invariant: Invariant;
  message: string;
}

export interface Verdict {
  /** Per running node: whether its membership view agrees with the world. */
  members: Map<string, boolean>;
  /** Per running agent: whether its kernel routes agree (false until it holds a lease). */
  routes: Map<string, boolean>;
  violations: Violation[];
}

/** The dcos-like first IPv4 block of a lease: what the agents route to. */
export function routedSubnet(lease: LeaseView): string | undefined {
  const nets = lease.networks;
  return nets['dcos']?.subnet ?? Object.values(nets).find((n) => n.subnet !== undefined)?.subnet;
}

/**
 * Carries what must persist across observations: the first lease seen of each agent since its
 * last release, the released agents' old subnets, and each observer's last view (false failures
 * count transitions, not states).
 */
export class Checker {
  private readonly kept = new Map<string, LeaseView>();
  private readonly releasedSubnets = new Map<string, string>();
  /** The lease each released agent held: its file still says so until it gets a new one. */
  private readonly releasedLeases = new Map<string, string>();
  private readonly lastStates = new Map<string, string>();

  private readonly allocatorMismatchSince = new Map<string, number>();

  /** `allocatorLagMs`: how long the leader's allocations may lag an agent's lease before it counts as lost. */
  constructor(
    private readonly world: World,
    private readonly falseFailureGraceMs: number,
    private readonly allocatorLagMs = 10_000,
  ) {}

  /** The lab released `agent`: its lease may be given to another, and no one may route to it. */
  released(agent: string): void {
    const lease = this.kept.get(agent);
    const subnet = lease === undefined ? undefined : routedSubnet(lease);
    if (subnet !== undefined) this.releasedSubnets.set(agent, subnet);
    if (lease !== undefined) this.releasedLeases.set(agent, describe(lease));
    this.kept.delete(agent);
  }

  evaluate(obs: Observation): Verdict {
    const violations: Violation[] = [];
    const v = (invariant: Invariant, message: string): void => {
      violations.push({ atMs: obs.atMs, invariant, message });
    };
    const world = this.world;
    const current = new Map<string, LeaseView>();
    for (const [agent, lease] of obs.leases) {
      const n = world.nodes.get(agent);
      // A released agent that has not run since keeps its old file; it holds nothing.
      if (n === undefined || (n.released && !n.running) || !n.started || this.releasedLeases.get(agent) === describe(lease)) continue;
      current.set(agent, lease);
    }
    this.checkUnique('agents', current, v);
    if (obs.allocations !== undefined) this.checkUnique("the allocator's", obs.allocations, v);
    for (const [agent, lease] of current) {
      const first = this.kept.get(agent);
      if (first !== undefined && !consistent(first, lease)) v('leases-kept', `${agent}'s lease changed without a release: ${describe(first)} -> ${describe(lease)}`);
      // The latest is kept: networks added by an overlay change are held from now on.
      else this.kept.set(agent, lease);
      const held = obs.allocations?.get(agent);
      if (obs.allocations === undefined) continue;
      if (!world.node(agent).running || (held !== undefined && consistent(held, lease))) {
        this.allocatorMismatchSince.delete(agent);
        continue;
      }
      // A master that has just become leader reports its state before it applied the log it
      // inherited (seen: every lease missing for one observation during a rolling restart of the
      // masters); only a mismatch that lasts is a lost lease.
      const since = this.allocatorMismatchSince.get(agent) ?? obs.atMs;
      this.allocatorMismatchSince.set(agent, since);
      if (obs.atMs - since >= this.allocatorLagMs)
        v('leases-kept', `${agent} holds ${describe(lease)} but the allocator has ${held === undefined ? 'no lease for it' : describe(held)} (for ${Math.round((obs.atMs - since) / 1000)} s)`);
    }
    const heldSubnets = new Set([...current.values()].map(routedSubnet).filter((s): s is string => s !== undefined));

    const members = new Map<string, boolean>();
    for (const n of world.nodes.values()) {
      if (!n.running) continue;
      const view = obs.members.get(n.name);
      members.set(n.name, view !== undefined && this.membersAgree(n.name, view));
      if (view !== undefined) this.falseFailures(n.name, view, obs.atMs, v);
    }

    const routes = new Map<string, boolean>();
    for (const a of world.agents) {
      if (!a.running) continue;
      const have = obs.routes.get(a.name);
      // Without a lease an agent programs nothing yet: it does not agree (formation, after a release).
      if (have === undefined || current.get(a.name) === undefined) {
        routes.set(a.name, false);
        continue;
      }
      let ok = true;
      for (const b of world.agents) {
        if (b.name === a.name) continue;
        const subnet = current.get(b.name) === undefined ? undefined : routedSubnet(current.get(b.name) as LeaseView);
        if (b.running && subnet !== undefined && world.clear(a.name, b.name) && !have.has(subnet)) ok = false;
      }
      // A released block nobody holds now must be gone from every kernel.
      for (const subnet of this.releasedSubnets.values()) if (!heldSubnets.has(subnet) && have.has(subnet)) ok = false;
      routes.set(a.name, ok);
    }
    return { members, routes, violations };
  }

  private membersAgree(observer: string, view: Map<string, string>): boolean {
    for (const n of this.world.nodes.values()) {
      if (n.name === observer || !n.started) continue;
      const state = view.get(n.name);
      if (n.running && this.world.clear(observer, n.name)) {
        if (state !== 'alive') return false;
      } else if (!n.running || (this.world.cut(observer, n.name) && !this.relayed(observer, n.name))) {
        // Down, or cut off with no one in between: gone from the view, failed or left; a suspicion has not ended yet.
        if (state === 'alive' || state === 'suspect') return false;
      }
      // One-way drops, loss, or a cut that a third member bridges (SWIM's indirect probes and
      // gossip may keep it alive through them): no expectation.
    }
    return true;
  }

  /** A running third member reaches both ends freely: it relays probes and news between them. */
  private relayed(a: string, b: string): boolean {
    for (const m of this.world.nodes.values()) if (m.running && m.name !== a && m.name !== b && this.world.clear(a, m.name) && this.world.clear(m.name, b)) return true;
    return false;
  }

  private falseFailures(observer: string, view: Map<string, string>, atMs: number, v: (i: Invariant, m: string) => void): void {
    const world = this.world;
    const grace = this.falseFailureGraceMs;
    const me = world.node(observer);
    for (const [member, state] of view) {
      const key = `${observer}>${member}`;
      const before = this.lastStates.get(key);
      this.lastStates.set(key, state);
      if (state !== 'failed' || before === 'failed') continue;
      const n = world.nodes.get(member);
      if (n === undefined || !n.running) continue;
      const quietSinceMs = Math.max(n.changedAtMs, me.changedAtMs, world.lastFaultAtMs(observer, member));
      if (world.clear(observer, member) && atMs - quietSinceMs >= grace)
        v('false-failure', `${observer} declared ${member} failed while it ran with nothing injected between them for ${Math.round((atMs - quietSinceMs) / 1000)} s`);
    }
  }

  private checkUnique(whose: string, leases: Map<string, LeaseView>, v: (i: Invariant, m: string) => void): void {
    const owners = new Map<string, string>();
    for (const [agent, lease] of leases) {
      const things = [`VTEP ${lease.vtepIp}`, `MAC ${lease.vtepMac.toLowerCase()}`];
      for (const [net, n] of Object.entries(lease.networks)) {
        if (n.subnet !== undefined) things.push(`${net} ${n.subnet}`);
        if (n.subnet6 !== undefined) things.push(`${net} ${n.subnet6}`);
      }
      for (const thing of things) {
        const other = owners.get(thing);
        if (other !== undefined && other !== agent) v('unique-addresses', `${thing} held by both ${other} and ${agent} (${whose} leases)`);
        else owners.set(thing, agent);
      }
    }
  }
}

/**
 * Whether two views of a lease agree on everything both hold: the VTEP address and MAC, and the
 * blocks of every network in both. A network added or removed by an overlay change is not a
 * changed lease; a block of a network that stayed is.
 */
function consistent(a: LeaseView, b: LeaseView): boolean {
  if (a.vtepIp !== b.vtepIp || a.vtepMac.toLowerCase() !== b.vtepMac.toLowerCase()) return false;
  for (const [net, x] of Object.entries(a.networks)) {
    const y = b.networks[net];
    if (y !== undefined && (x.subnet !== y.subnet || x.subnet6 !== y.subnet6)) return false;
  }
  return true;
}

function describe(lease: LeaseView): string {
  const nets = Object.keys(lease.networks)
    .sort()
    .map((k) => [k, lease.networks[k]?.subnet, lease.networks[k]?.subnet6].filter((x) => x !== undefined).join(' '));
  return `[vtep ${lease.vtepIp} ${lease.vtepMac.toLowerCase()}; ${nets.join('; ')}]`;
}

/** Whether a container on `a` should reach one on `b` now: true, false, or undefined (no expectation: loss, a one-way drop, a node down). */
export function pingExpected(world: World, a: string, b: string): boolean | undefined {
  const na = world.node(a);
  const nb = world.node(b);
  if (!na.running || !nb.running || na.released || nb.released) return undefined;
  // A ping needs both directions; a drop either way loses it.
  if (world.dropped(a, b) || world.dropped(b, a)) return false;
  if (world.lossPercent(a, b) > 0) return undefined;
  return true;
}
