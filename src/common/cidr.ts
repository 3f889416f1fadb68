/**
 * CIDR arithmetic for IPv4 and IPv6 on BigInt, without node:net (pure cores use it: ipam,
 * routes, vxlan).
 */
import { formatIp, parseIp, type IpFamily } from './ip.js';

export interface Cidr {
  readonly family: IpFamily;
  /** The network address (host bits zero). */
  readonly base: bigint;
  readonly prefix: number;
}

export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

export function bigIntToBytes(value: bigint, family: IpFamily): Uint8Array {
  const n = family === 4 ? 4 : 16;
  const out = new Uint8Array(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The address as text. */
export function formatAddress(value: bigint, family: IpFamily): string {
  return formatIp(bigIntToBytes(value, family));
}

/** Parses an address to its number, or undefined. */
export function parseAddress(text: string): { family: IpFamily; value: bigint } | undefined {
  const ip = parseIp(text);
  return ip === undefined ? undefined : { family: ip.family, value: bytesToBigInt(ip.bytes) };
}

/**
 * Parses "address/prefix". With `strict`, host bits must be zero (a network, not an address in
 * one); otherwise they are cleared. Undefined when malformed.
 */
export function parseCidr(text: string, strict = true): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseAddress(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const bits = familyBits(address.family);
  if (prefix > bits) return undefined;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if (strict && (address.value & hostMask) !== 0n) return undefined;
  return { family: address.family, base: address.value & ~hostMask & ((1n << BigInt(bits)) - 1n), prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.base, cidr.family)}/${cidr.prefix}`;
}

/** Number of addresses in the block. */
export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(familyBits(cidr.family) - cidr.prefix);
}

export function cidrContains(cidr: Cidr, family: IpFamily, value: bigint): boolean {
  return family === cidr.family && value >= cidr.base && value < cidr.base + cidrSize(cidr);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const aEnd = a.base + cidrSize(a);
  const bEnd = b.base + cidrSize(b);
  return a.base < bEnd && b.base < aEnd;
}

/** The `index`-th sub-block of prefix `prefix` inside `cidr`. */
export function subBlock(cidr: Cidr, prefix: number, index: number): Cidr {
  const step = 1n << BigInt(familyBits(cidr.family) - prefix);
  return { family: cidr.family, base: cidr.base + BigInt(index) * step, prefix };
}

/** How many sub-blocks of prefix `prefix` fit in `cidr` (as a number; capped at 2^53). */
export function subBlockCount(cidr: Cidr, prefix: number): number {
  const count = 1n << BigInt(Math.max(0, prefix - cidr.prefix));
  return count > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(count);
}

/** The `offset`-th address of the block. */
export function addressAt(cidr: Cidr, offset: number): bigint {
  return cidr.base + BigInt(offset);
}
