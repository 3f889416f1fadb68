/**
 * Kind -> store operations. Built on first use: the OR-map's operations refer back here for
 * nested kinds, and a table built at module load would meet that cycle half-initialised.
 */
import { AW_SET_OPS } from './awset.js';
import { DW_FLAG_OPS, EW_FLAG_OPS } from './dot-set.js';
import { OR_MAP_OPS } from './map-store.js';
import { LWW_REGISTER_OPS, MV_REGISTER_OPS } from './registers.js';
import type { Kind, StoreOps } from './store.js';

let table: Record<Kind, StoreOps<unknown, unknown>> | undefined;

export function opsForKind(kind: Kind): StoreOps<unknown, unknown> {
  table ??= {
    ewflag: EW_FLAG_OPS as StoreOps<unknown, unknown>,
    dwflag: DW_FLAG_OPS as StoreOps<unknown, unknown>,
    lww: LWW_REGISTER_OPS as StoreOps<unknown, unknown>,
    mvreg: MV_REGISTER_OPS as StoreOps<unknown, unknown>,
    awset: AW_SET_OPS as StoreOps<unknown, unknown>,
    ormap: OR_MAP_OPS as StoreOps<unknown, unknown>,
  };
  return table[kind];
}
