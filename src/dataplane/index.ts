export { MAIN_TABLE, KERNEL_OP_NAMES, emptyDesiredState } from './types.js';
export type {
  DesiredState,
  DesiredLink,
  DesiredAddress,
  DesiredRoute,
  DesiredNeighbour,
  DesiredFdb,
  DesiredRule,
  VxlanAttrs,
  LinkKind,
  KernelLink,
  KernelAddress,
  KernelRoute,
  KernelNeighbour,
  KernelFdb,
  KernelRule,
  KernelSnapshot,
  KernelOp,
  KernelOpName,
  KernelEvent,
  LinkCreateSpec,
} from './types.js';
export { DataplaneError, DataplaneErrorCode, KernelError, errnoFromMessage } from './errors.js';
export type { Kernel } from './kernel.js';
export { describeOp } from './kernel.js';
export { FakeKernel } from './fake-kernel.js';
export type { FakeKernelOptions } from './fake-kernel.js';
export { Reconciler, LASHUP_ROUTE_PROTOCOL, LASHUP_LINK_ALIAS } from './reconciler.js';
export type { ReconcilerOptions, ReconcilerStats, ApplyResult, OpCounts } from './reconciler.js';
export { normalizeState } from './desired.js';
export type { NetlinkKernelOptions } from './netlink-kernel.js';

/**
 * Opens the real rtnetlink backend in this process's network namespace. Loaded on demand, so
 * that code paths without a dataplane (masters, tests) never load the native `netlink` module.
 */
export async function openNetlinkKernel(options: import('./netlink-kernel.js').NetlinkKernelOptions = {}): Promise<import('./netlink-kernel.js').NetlinkKernel> {
  const { NetlinkKernel } = await import('./netlink-kernel.js');
  return new NetlinkKernel(options);
}
