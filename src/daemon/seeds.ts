/**
 * Seed addresses: where a node joins. A seed is a libp2p multiaddr (`/ip4/A/tcp/P`, optionally
 * ending in `/p2p/<peer id>`) or "host:port" of a node's libp2p port. Validated when the config
 * is read, so a typo exits with the JSON path instead of being retried forever at run time.
 */
import { isIp, LashupError } from '../common/index.js';

const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const MULTIADDR = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d{1,5})(\/p2p\/[1-9A-HJ-NP-Za-km-z]{20,100})?$/;

const validPort = (text: string): boolean => /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535;

const invalid = (seed: string, why: string): LashupError =>
  new LashupError('LASHUP_ERR_INVALID_SEED', `seed ${JSON.stringify(seed)} is not valid: ${why}; expected "host:port" (port 1-65535) or a multiaddr /ip4|ip6|dns/HOST/tcp/PORT[/p2p/PEER]`, { seed });

/** A seed as a multiaddr ("host:port" becomes /ip4|ip6|dns/host/tcp/port); throws LASHUP_ERR_INVALID_SEED. */
export function seedMultiaddr(seed: string): string {
  if (seed.startsWith('/')) {
    const m = MULTIADDR.exec(seed);
    if (m === null) throw invalid(seed, 'not a TCP multiaddr');
    const [, proto, host, port] = m as unknown as [string, string, string, string];
    if (proto === 'ip4' && !isIp(host, 4)) throw invalid(seed, `${host} is not an IPv4 address`);
    if (proto === 'ip6' && !isIp(host, 6)) throw invalid(seed, `${host} is not an IPv6 address`);
    if (proto.startsWith('dns') && !DNS_NAME.test(host)) throw invalid(seed, `${host} is not a host name`);
    if (!validPort(port)) throw invalid(seed, `port ${port} is out of range`);
    return seed;
  }
  const m = /^\[([^\]]+)\]:([^:]*)$/.exec(seed) ?? /^([^:[\]]+):([^:]*)$/.exec(seed);
  if (m === null) throw invalid(seed, 'no port');
  const host = m[1] as string;
  const port = m[2] as string;
  if (!validPort(port)) throw invalid(seed, `port ${JSON.stringify(port)} is not an integer from 1 to 65535`);
  const family = isIp(host, 6) ? 6 : isIp(host, 4) ? 4 : 0;
  if (family === 0 && (/^[0-9.]+$/.test(host) || !DNS_NAME.test(host))) throw invalid(seed, `${JSON.stringify(host)} is neither an IP address nor a host name`);
  const proto = family === 6 ? 'ip6' : family === 4 ? 'ip4' : 'dns';
  return `/${proto}/${host}/tcp/${port}`;
}
