/**
 * VIP declarations as tasks give them (pure):
 *
 *   /<name>:<port>[:<backend port>][/tcp|/udp]     a named VIP: <name>.<framework>.l4lb.<zone>,
 *                                                  its address allocated from the VIP range
 *   <ip>:<port>[:<backend port>][/tcp|/udp]        an address VIP ([v6]:port for IPv6)
 *
 * e.g. `/web:80:8080` (VIP port 80 to the container's 8080, TCP), `/dns:53/udp`,
 * `1.2.3.4:5000`. The backend port defaults to the VIP's port, the protocol to TCP. Names are one
 * DNS label (1-63 letters, digits and `-`, case-insensitive: kept in lower case). An address VIP
 * must not lie inside an overlay subnet (it would shadow a container's address).
 *
 * The backend port follows a ":" rather than "=": CNI_ARGS is `KEY=VALUE;...` and the reference
 * plugins refuse a pair whose value holds another "=" (found by the kernel test: the bridge
 * plugin failed the ADD with "invalid pair").
 */
import { cidrContains, parseAddress, parseCidr } from '../common/index.js';
import { VipError, VipErrorCode } from './errors.js';

export interface VipDeclaration {
  /** `named`: `name` is set; `address`: `address` is set. */
  kind: 'named' | 'address';
  name?: string;
  address?: string;
  port: number;
  protocol: 'tcp' | 'udp';
  /** The container's port the VIP's connections go to. */
  backendPort: number;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DECLARATION = /^(?:\/([^:/=]+)|\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):([^:/]+)(?::([^/]+))?(?:\/([A-Za-z]+))?$/;

const show = (v: string): string => JSON.stringify(v.slice(0, 100));

function port(text: string, what: string, declaration: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1 && n <= 65_535))
    throw new VipError(VipErrorCode.Invalid, `VIP ${show(declaration)}: ${what} ${show(text)} is not valid; expected a port from 1 to 65535`, { value: declaration, field: what });
  return n;
}

/** Parses one declaration; `overlaySubnets` are refused as address VIPs. Throws VipError. */
export function parseVipDeclaration(text: string, overlaySubnets: readonly string[] = []): VipDeclaration {
  const m = DECLARATION.exec(text.trim());
  if (m === null)
    throw new VipError(VipErrorCode.Invalid, `VIP ${show(text)} is not valid; expected /<name>:<port>[:<backend port>][/tcp|/udp] or <ip>:<port>[:<backend port>][/tcp|/udp] (IPv6 in brackets)`, {
      value: text,
      field: 'vip',
    });
  const [, name, v6, v4, portText, backendText, protocolText] = m;
  const p = port(portText as string, 'port', text);
  const backendPort = backendText === undefined ? p : port(backendText, 'backend port', text);
  const protocol = (protocolText ?? 'tcp').toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp')
    throw new VipError(VipErrorCode.Invalid, `VIP ${show(text)}: protocol ${show(protocolText ?? '')} is not valid; expected tcp or udp`, { value: text, field: 'protocol' });
  if (name !== undefined) {
    const label = name.toLowerCase();
    if (!LABEL.test(label))
      throw new VipError(VipErrorCode.Invalid, `VIP ${show(text)}: name ${show(name)} is not valid; expected one DNS label: 1-63 letters, digits or "-", not starting or ending with "-"`, {
        value: text,
        field: 'name',
      });
    return { kind: 'named', name: label, port: p, protocol, backendPort };
  }
  const address = (v6 ?? v4) as string;
  const parsed = parseAddress(address);
  if (parsed === undefined || (v6 !== undefined) !== (parsed.family === 6))
    throw new VipError(VipErrorCode.Invalid, `VIP ${show(text)}: address ${show(address)} is not valid; expected an IPv4 address, or an IPv6 one in brackets`, { value: text, field: 'address' });
  for (const subnet of overlaySubnets) {
    const cidr = parseCidr(subnet, false);
    if (cidr !== undefined && cidrContains(cidr, parsed.family, parsed.value))
      throw new VipError(VipErrorCode.InOverlay, `VIP ${show(text)}: address ${address} lies inside overlay subnet ${subnet}; an address VIP must be outside every overlay subnet`, {
        value: text,
        subnet,
      });
  }
  return { kind: 'address', address, port: p, protocol, backendPort };
}
