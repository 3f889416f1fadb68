export { LashupError, InvalidArgumentError, isLashupError, describeValue } from './errors.js';
export type { ErrorDetails } from './errors.js';
export { RealClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { SeededRng, randomlySeededRng, hashString32, fmix32 } from './rng.js';
export { copyBytes, concatBytes } from './bytes.js';
export type { Rng } from './rng.js';
export { parseIp, isIp, formatIp, canonicalIp } from './ip.js';
export type { IpAddress, IpFamily } from './ip.js';
export { crc32 } from './crc32.js';
export {
  parseCidr,
  formatCidr,
  cidrSize,
  cidrContains,
  cidrsOverlap,
  subBlock,
  subBlockCount,
  addressAt,
  parseAddress,
  formatAddress,
  familyBits,
  bytesToBigInt,
  bigIntToBytes,
} from './cidr.js';
export type { Cidr } from './cidr.js';
export { parseMac, formatMac, canonicalMac } from './mac.js';
export { isValidInterfaceName, MAX_INTERFACE_NAME_LENGTH } from './ifname.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { jsonEquals } from './json-equals.js';
export { SerialRunner } from './serial-runner.js';
