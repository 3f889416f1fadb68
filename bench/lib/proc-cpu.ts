/**
 * CPU time of process trees from /proc (user + system, clock ticks of 10 ms on Linux): what
 * the daemons of a namespace benchmark spent over a phase, read from outside without touching
 * them. A daemon's tree is the daemon, the children it has reaped (a spawned `nft`) and the
 * children alive (its netlink notification child, its `nft -i`). Gone processes count 0.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 10;

interface Stat {
  ppid: number;
  /** utime + stime, ms. */
  ownMs: number;
  /** cutime + cstime (children it has waited for), ms. */
  reapedMs: number;
}

function statOf(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: fields are counted after its closing paren.
    const f = text
      .slice(text.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    return { ppid: f[1] as number, ownMs: ((f[11] as number) + (f[12] as number)) * TICK_MS, reapedMs: ((f[13] as number) + (f[14] as number)) * TICK_MS };
  } catch {
    return undefined;
  }
}

/** The CPU ms used so far by the trees of `pids`, summed. */
export function treeCpuMs(pids: readonly (number | undefined)[]): number {
  const roots = new Set(pids.filter((p): p is number => p !== undefined));
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const s = statOf(pid);
    if (s === undefined) continue;
    if (roots.has(pid) || roots.has(s.ppid)) total += s.ownMs + s.reapedMs;
  }
  return total;
}

/** The CPU ms per second the trees of `pids` spend over a quiet window of `windowMs`. */
export async function idleCpuMsPerSec(pids: readonly (number | undefined)[], windowMs: number): Promise<number> {
  const startMs = Date.now();
  const startCpuMs = treeCpuMs(pids);
  await new Promise((r) => setTimeout(r, windowMs));
  return ((treeCpuMs(pids) - startCpuMs) / (Date.now() - startMs)) * 1000;
}
