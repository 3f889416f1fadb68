/** The host's resolvers, from /etc/resolv.conf (the DNS server's default upstreams). */
import { readFileSync } from 'node:fs';
import { isIp } from '../common/index.js';

/** The `nameserver` addresses of `path` (none when it cannot be read). */
export function systemResolvers(path = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1])
    .filter((ip): ip is string => ip !== undefined && isIp(ip));
}
