/**
 * Interface names lashup derives: the VTEP (configured, `vtep1024` by default) and, per overlay
 * network, the Mesos bridge `m-<network>` and the Docker bridge `d-<network>`. Linux caps names
 * at 15 characters, so a network name has at most 13.
 */
import { isValidInterfaceName, MAX_INTERFACE_NAME_LENGTH } from '../common/index.js';
import { invalidSpec } from './errors.js';

/** Longest overlay network name: the bridge prefixes `m-` and `d-` take two of Linux's 15 characters. */
export const MAX_NETWORK_NAME = MAX_INTERFACE_NAME_LENGTH - 2;
const RESERVED = ['host', 'bridge', 'default', 'none'];

export function validateNetworkName(name: unknown, path = 'network'): string {
  if (typeof name !== 'string' || name.length > MAX_NETWORK_NAME || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    invalidSpec(path, name, `1 to ${MAX_NETWORK_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  if (RESERVED.includes(name.toLowerCase())) invalidSpec(path, name, `a name other than ${RESERVED.join(', ')} (container runtimes reserve them)`);
  return name;
}

export function validateVtepName(name: unknown, path = 'vtepName'): string {
  if (!isValidInterfaceName(name)) invalidSpec(path, name, `an interface name of 1 to ${MAX_INTERFACE_NAME_LENGTH} letters, digits, '.', '_' or '-'`);
  return name;
}

export interface BridgeNames {
  /** Bridge of the Mesos half (lower half of the agent's block). */
  mesos: string;
  /** Bridge of the Docker half (upper half). */
  docker: string;
}

export function bridgeNames(network: string): BridgeNames {
  const name = validateNetworkName(network);
  return { mesos: `m-${name}`, docker: `d-${name}` };
}
