/**
 * What the lab did to the cluster, as the checks need it: which nodes run, which were released,
 * which packets the injected faults drop, and when each fault began and ended. Pure: time is
 * given by the caller, so the checks can be unit-tested on a virtual clock.
 *
 * Invariant: `dropped(a, b)` and `lossPercent(a, b)` are exactly what the fault rules installed
 * on the hosts say (faults.ts renders its rules from this same state), so an expectation never
 * disagrees with the network about what was injected.
 */

export interface LabNode {
  readonly name: string;
  readonly role: 'master' | 'agent';
  running: boolean;
  /** Ever started (spare agents are not until a join). */
  started: boolean;
  /** Released by the lab and not started since: its addresses may belong to another agent now. */
  released: boolean;
  /** When it last started, stopped or was killed. */
  changedAtMs: number;
}

/** A fault as the report draws it: a window per kind and label. */
export interface FaultWindow {
  kind: 'partition' | 'loss' | 'down';
  label: string;
  fromMs: number;
  /** Absent while the fault lasts. */
  toMs?: number;
}

const pairKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

export class World {
  readonly nodes = new Map<string, LabNode>();
  readonly windows: FaultWindow[] = [];
  /** Directed drops `from>to`. */
  private readonly drops = new Set<string>();
  private readonly loss = new Map<string, number>();
  /** Last time a fault between the pair began or ended. */
  private readonly pairFaultAtMs = new Map<string, number>();
  private partitionWindow: FaultWindow | undefined;
  private readonly lossWindows = new Map<string, FaultWindow>();
  private readonly downWindows = new Map<string, FaultWindow>();

  constructor(masters: readonly string[], agents: readonly string[]) {
    for (const name of masters) this.nodes.set(name, { name, role: 'master', running: false, started: false, released: false, changedAtMs: 0 });
    for (const name of agents) this.nodes.set(name, { name, role: 'agent', running: false, started: false, released: false, changedAtMs: 0 });
  }

  node(name: string): LabNode {
    const n = this.nodes.get(name);
    if (n === undefined) throw new RangeError(`no node ${name} in this lab`);
    return n;
  }

  get agents(): LabNode[] {
    return [...this.nodes.values()].filter((n) => n.role === 'agent');
  }

  started(name: string, nowMs: number): void {
    const n = this.node(name);
    n.running = true;
    n.released = false;
    n.changedAtMs = nowMs;
    const w = this.downWindows.get(name);
    // A node that never ran was not down: spare agents get no window before their join.
    if (w !== undefined) {
      w.toMs = nowMs;
      this.downWindows.delete(name);
    }
    n.started = true;
  }

  stopped(name: string, nowMs: number, how: 'killed' | 'stopped'): void {
    const n = this.node(name);
    n.running = false;
    n.changedAtMs = nowMs;
    if (!this.downWindows.has(name)) {
      const w: FaultWindow = { kind: 'down', label: `${name} ${how}`, fromMs: nowMs };
      this.windows.push(w);
      this.downWindows.set(name, w);
    }
  }

  released(name: string): void {
    this.node(name).released = true;
  }

  /** Drops packets between groups (both ways, or only from the first group to the others). Replaces an earlier partition. */
  partition(groups: readonly (readonly string[])[], oneWay: boolean, nowMs: number): void {
    this.heal(nowMs);
    for (const [i, g] of groups.entries())
      for (const [j, h] of groups.entries()) {
        if (i === j || (oneWay && i !== 0)) continue;
        for (const a of g)
          for (const b of h) {
            this.drops.add(`${a}>${b}`);
            this.pairFaultAtMs.set(pairKey(a, b), nowMs);
          }
      }
    this.partitionWindow = { kind: 'partition', label: `${groups.map((g) => g.join(',')).join(oneWay ? ' -/-> ' : ' | ')}`, fromMs: nowMs };
    this.windows.push(this.partitionWindow);
  }

  heal(nowMs: number): void {
    for (const d of this.drops) {
      const [a, b] = d.split('>') as [string, string];
      this.pairFaultAtMs.set(pairKey(a, b), nowMs);
    }
    this.drops.clear();
    if (this.partitionWindow !== undefined) this.partitionWindow.toMs = nowMs;
    this.partitionWindow = undefined;
  }

  /** Loses `percent` of the packets between a and b, both ways; 0 removes the loss. */
  setLoss(a: string, b: string, percent: number, nowMs: number): void {
    const key = pairKey(a, b);
    this.pairFaultAtMs.set(key, nowMs);
    const open = this.lossWindows.get(key);
    if (open !== undefined) {
      open.toMs = nowMs;
      this.lossWindows.delete(key);
    }
    if (percent === 0) {
      this.loss.delete(key);
      return;
    }
    this.loss.set(key, percent);
    const w: FaultWindow = { kind: 'loss', label: `${a} ~ ${b} ${percent}% loss`, fromMs: nowMs };
    this.windows.push(w);
    this.lossWindows.set(key, w);
  }

  dropped(from: string, to: string): boolean {
    return this.drops.has(`${from}>${to}`);
  }

  lossPercent(a: string, b: string): number {
    return this.loss.get(pairKey(a, b)) ?? 0;
  }

  /** Nothing injected stands between a and b now (no drop either way, no loss). */
  clear(a: string, b: string): boolean {
    return !this.dropped(a, b) && !this.dropped(b, a) && this.lossPercent(a, b) === 0;
  }

  /** Packets are dropped both ways (a two-way partition). */
  cut(a: string, b: string): boolean {
    return this.dropped(a, b) && this.dropped(b, a);
  }

  /** When a fault between a and b last began or ended (0: never). */
  lastFaultAtMs(a: string, b: string): number {
    return this.pairFaultAtMs.get(pairKey(a, b)) ?? 0;
  }

  /** Fault-rule lines for a host's output chain (faults.ts). */
  outputRules(name: string): { to: string; drop: boolean; lossPercent: number }[] {
    const out: { to: string; drop: boolean; lossPercent: number }[] = [];
    for (const other of this.nodes.keys()) {
      if (other === name) continue;
      const drop = this.dropped(name, other);
      const loss = this.lossPercent(name, other);
      if (drop || loss > 0) out.push({ to: other, drop, lossPercent: loss });
    }
    return out;
  }

  /** Directed drops into `name` (its input chain: a one-way partition drops at both ends). */
  inputDrops(name: string): string[] {
    return [...this.nodes.keys()].filter((other) => other !== name && this.dropped(other, name));
  }
}
