/**
 * Structural equality of JSON-shaped values: key order does not matter, and a property whose
 * value is undefined counts as absent (as in JSON). Comparing `JSON.stringify` texts, as the
 * allocator and the lease client did, calls two equal objects different when their keys were
 * inserted in another order (a lease decoded from the wire against one read from disk), which
 * turned a no-op into a "changed" lease and a needless republish.
 */
export function jsonEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => jsonEquals(v, b[i]));
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && jsonEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
