export { EventQueue } from './event-queue.js';
export type { EventFn } from './event-queue.js';
export { Scheduler, ScopedClock } from './scheduler.js';
export type { SchedulerOptions, RunLimits } from './scheduler.js';
export { TraceHasher } from './trace.js';
export { sampleLatencyMs, validateLatencyModel } from './latency.js';
export type { LatencyModel } from './latency.js';
export { SimNetwork, SimHost, SimStreamEnd, validateLinkConfig } from './network.js';
export type {
  SimAddress,
  LinkConfig,
  NetworkOptions,
  StreamFailure,
  HostCounters,
  PacketHandler,
  StreamHandler,
  ConnectCallback,
} from './network.js';
export { Simulation } from './simulation.js';
export type { SimulationOptions } from './simulation.js';
