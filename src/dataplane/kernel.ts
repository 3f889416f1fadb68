/**
 * The narrow kernel interface the reconciler drives: exactly what lashup needs of rtnetlink, no
 * more. Two implementations: `NetlinkKernel` (the real one) and `FakeKernel` (in memory, for
 * tests, validating like the kernel).
 */
import type { KernelError } from './errors.js';
import type { KernelEvent, KernelLink, KernelOp, KernelSnapshot } from './types.js';

export interface Kernel {
  /** Lists every object kind the reconciler tracks (both address families). */
  snapshot(): Promise<KernelSnapshot>;
  /** Lists links only (after link creation, to learn new interface indexes). */
  listLinks(): Promise<KernelLink[]>;
  /**
   * Performs `ops` in order and reports each one's outcome (undefined = done). An operation's
   * failure does not stop the ones after it. Implementations bound how many are in flight.
   * Rejects only when the kernel cannot be reached at all.
   */
  execute(ops: readonly KernelOp[]): Promise<(KernelError | undefined)[]>;
  /** Registers for change notifications; returns the unsubscribe function. */
  subscribe(listener: (event: KernelEvent) => void): () => void;
  close(): Promise<void>;
}

/** Short text of an operation for logs and errors. */
export function describeOp(op: KernelOp): string {
  switch (op.op) {
    case 'link.create':
      return `link.create ${op.link.name} (${op.link.kind})`;
    case 'link.delete':
      return `link.delete #${op.ifindex}`;
    case 'link.set':
      return `link.set #${op.ifindex}`;
    case 'addr.add':
    case 'addr.delete':
      return `${op.op} ${op.addr.address}/${op.addr.prefixLen} on #${op.addr.ifindex}`;
    case 'route.replace':
    case 'route.delete':
      return `${op.op} ${op.route.dst}/${op.route.prefixLen} table ${op.route.table}`;
    case 'neigh.replace':
    case 'neigh.delete':
      return `${op.op} ${op.neigh.ip} on #${op.neigh.ifindex}`;
    case 'fdb.replace':
    case 'fdb.delete':
      return `${op.op} ${op.fdb.mac}${op.fdb.dst === undefined ? '' : ` dst ${op.fdb.dst}`} on #${op.fdb.ifindex}`;
    case 'rule.add':
    case 'rule.delete':
      return `${op.op} pref ${op.rule.priority} table ${op.rule.table}`;
  }
}
