/**
 * Ethernet MAC addresses as canonical text: six lower-case two-digit hex groups joined by ':'.
 * The kernel reports MACs as bytes and operators type them in any case; comparing canonical
 * text keeps "70:B3:D5:80:00:01" and "70:b3:d5:80:00:01" from looking like drift.
 */

const MAC_PATTERN = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** The six bytes of `text`, or undefined when it is not `xx:xx:xx:xx:xx:xx`. */
export function parseMac(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || !MAC_PATTERN.test(text)) return undefined;
  return Uint8Array.from(text.split(':').map((part) => parseInt(part, 16)));
}

export function formatMac(bytes: Uint8Array): string {
  if (bytes.length !== 6) throw new RangeError(`a MAC address has 6 bytes, not ${bytes.length}`);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Canonical text of a MAC, or undefined when malformed. */
export function canonicalMac(text: string): string | undefined {
  const bytes = parseMac(text);
  return bytes === undefined ? undefined : formatMac(bytes);
}
