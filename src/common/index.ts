export { LashupError, InvalidArgumentError, isLashupError, describeValue } from './errors.js';
export type { ErrorDetails } from './errors.js';
export { RealClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { SeededRng, randomlySeededRng, hashString32 } from './rng.js';
export { copyBytes } from './bytes.js';
export type { Rng } from './rng.js';
export { parseIp, isIp, formatIp, canonicalIp } from './ip.js';
export type { IpAddress, IpFamily } from './ip.js';
