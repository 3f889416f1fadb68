/**
 * When a daemon counts as ready (systemd's `Type=notify`, `GET /v1/status`'s `ready`): it has
 * joined the cluster (or is the first master, with no seeds to join) and, on an agent, holds a
 * lease and has programmed the kernel once with nothing left to do. A unit that other services
 * order themselves after (a container runtime, say) then starts when the overlay works, not when
 * the process exists.
 *
 * Pure: the daemon passes what it sees; `ReadinessLatch` keeps the first "ready" (systemd is told
 * once; a later partition is the alerts' business, not the service manager's).
 */

export interface ReadinessView {
  role: 'master' | 'agent';
  /** Configured seeds: none means this node starts the cluster itself. */
  seeds: number;
  /** Alive members as this node sees them, itself included. */
  liveMembers: number;
  leaseHeld: boolean;
  /** Agents with `dataplane.enabled`: whether the kernel must be programmed first. */
  dataplane: boolean;
  /** The reconciler's last apply left nothing to do. */
  kernelConverged: boolean;
}

export interface Readiness {
  ready: boolean;
  /** What it still waits for (empty when ready): "join", "lease", "kernel". */
  waitingFor: string[];
}

export function assessReadiness(v: ReadinessView): Readiness {
  const waitingFor: string[] = [];
  if (v.seeds > 0 && v.liveMembers < 2) waitingFor.push('join');
  if (v.role === 'agent') {
    if (!v.leaseHeld) waitingFor.push('lease');
    else if (v.dataplane && !v.kernelConverged) waitingFor.push('kernel');
  }
  return { ready: waitingFor.length === 0, waitingFor };
}

/** Remembers the first time a daemon was ready (and when, for the log). */
export class ReadinessLatch {
  private readyAtMs: number | undefined;

  constructor(private readonly view: () => ReadinessView) {}

  /** The assessment now, with `ready` staying true once it was. */
  check(nowMs: number): Readiness & { readyAtMs: number | undefined } {
    const now = assessReadiness(this.view());
    if (now.ready && this.readyAtMs === undefined) this.readyAtMs = nowMs;
    return this.readyAtMs === undefined ? { ...now, readyAtMs: undefined } : { ready: true, waitingFor: now.waitingFor, readyAtMs: this.readyAtMs };
  }
}
