/**
 * What a member tells the others about itself: at most 512 bytes, carried in alive messages and
 * syncs. The membership protocol treats it as opaque bytes; this module gives lashup's content
 * its type, encoding and validation.
 *
 * Wire form (msgpack, version 1): [1, role, underlayIp, version, peerId, addrs, tags, raft?], with
 * role 0 = master, 1 = agent, peerId a string or null, addrs an array of strings, tags a flat
 * array [key, value, ...] (sorted by key, so equal metadata gives equal bytes), and raft (masters
 * in the allocator's group) [raftRole, term] with raftRole 0 = follower, 1 = precandidate,
 * 2 = candidate, 3 = leader. The raft item was added after 0.1.0's first builds, which carried the Raft role in
 * the operators' tags (`raftRole`, `raftTerm`, where an operator's tag could collide with it) and
 * accept exactly seven items.
 */
import { Packr } from 'msgpackr';
import { canonicalIp } from '../common/index.js';
import { decodeFail, describeRaw, MAX_META_BYTES, unpackHostile } from './codec.js';
import { MembershipError, MembershipErrorCode } from './errors.js';

export type MemberRole = 'master' | 'agent';

export interface MemberMeta {
  /** Masters run the allocator's consensus group; agents host containers. */
  readonly role: MemberRole;
  /** The address other agents send VXLAN traffic to (canonical text, IPv4 or IPv6). */
  readonly underlayIp: string;
  /** lashup version string (e.g. "0.1.0"). */
  readonly version: string;
  /** libp2p peer id, when the node runs libp2p. */
  readonly peerId?: string;
  /** libp2p listen multiaddrs. */
  readonly addrs?: readonly string[];
  /** Operator tags (short strings). */
  readonly tags?: Readonly<Record<string, string>>;
  /** A master's place in the allocator's Raft group, so agents find the leader. */
  readonly raft?: MemberRaft;
}

export type MemberRaftRole = 'follower' | 'precandidate' | 'candidate' | 'leader';

export interface MemberRaft {
  readonly role: MemberRaftRole;
  readonly term: number;
}

export const META_FORMAT_VERSION = 1;
const ROLES: readonly MemberRole[] = ['master', 'agent'];
const RAFT_ROLES: readonly MemberRaftRole[] = ['follower', 'precandidate', 'candidate', 'leader'];
const MAX_TEXT = 256;

const packr = new Packr({ useRecords: false, moreTypes: false });

function invalid(field: string, value: unknown, expected: string): never {
  throw new MembershipError(MembershipErrorCode.InvalidMeta, `member metadata ${field} = ${describeRaw(value)} is not valid; expected ${expected}`, {
    field,
  });
}

function text(value: unknown, field: string, maxLength = MAX_TEXT): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) invalid(field, value, `a string of 1 to ${maxLength} characters`);
  return value;
}

/** Validates `meta` and returns its canonical form. */
export function checkMeta(meta: MemberMeta): MemberMeta {
  if (meta === null || typeof meta !== 'object') invalid('(metadata)', meta, 'an object');
  if (!ROLES.includes(meta.role)) invalid('role', meta.role, `one of ${ROLES.join(', ')}`);
  const underlayIp = canonicalIp(text(meta.underlayIp, 'underlayIp', 45));
  if (underlayIp === undefined) invalid('underlayIp', meta.underlayIp, 'an IPv4 or IPv6 address');
  const out: { -readonly [K in keyof MemberMeta]: MemberMeta[K] } = { role: meta.role, underlayIp, version: text(meta.version, 'version', 64) };
  if (meta.peerId !== undefined) out.peerId = text(meta.peerId, 'peerId', 128);
  if (meta.addrs !== undefined) {
    if (!Array.isArray(meta.addrs) || meta.addrs.length > 16) invalid('addrs', meta.addrs, 'an array of at most 16 addresses');
    out.addrs = meta.addrs.map((a, i) => text(a, `addrs[${i}]`));
  }
  if (meta.tags !== undefined) {
    if (meta.tags === null || typeof meta.tags !== 'object' || Array.isArray(meta.tags)) invalid('tags', meta.tags, 'an object of string values');
    const tags: Record<string, string> = {};
    for (const key of Object.keys(meta.tags).sort()) {
      text(key, `tags key`, 64);
      Object.defineProperty(tags, key, { value: text(meta.tags[key], `tags.${key}`), enumerable: true });
    }
    out.tags = tags;
  }
  if (meta.raft !== undefined) {
    if (meta.raft === null || typeof meta.raft !== 'object' || !RAFT_ROLES.includes(meta.raft.role)) invalid('raft.role', meta.raft?.role, `one of ${RAFT_ROLES.join(', ')}`);
    if (!Number.isSafeInteger(meta.raft.term) || meta.raft.term < 0) invalid('raft.term', meta.raft.term, 'a non-negative integer');
    out.raft = { role: meta.raft.role, term: meta.raft.term };
  }
  return out;
}

/** Encodes metadata; a result above 512 bytes is LASHUP_ERR_MEMBERSHIP_INVALID_META. */
export function encodeMeta(meta: MemberMeta): Uint8Array {
  const m = checkMeta(meta);
  const tags: string[] = [];
  for (const [key, value] of Object.entries(m.tags ?? {})) tags.push(key, value);
  const items: unknown[] = [META_FORMAT_VERSION, ROLES.indexOf(m.role), m.underlayIp, m.version, m.peerId ?? null, m.addrs ?? [], tags];
  if (m.raft !== undefined) items.push([RAFT_ROLES.indexOf(m.raft.role), m.raft.term]);
  const bytes = packr.pack(items).slice();
  if (bytes.byteLength > MAX_META_BYTES) {
    throw new MembershipError(MembershipErrorCode.InvalidMeta, `member metadata encodes to ${bytes.byteLength} bytes, above the limit of ${MAX_META_BYTES}; shorten tags or addresses`, {
      bytes: bytes.byteLength,
      maxBytes: MAX_META_BYTES,
    });
  }
  return bytes;
}

/** Decodes metadata received from a member. Throws only MembershipError. */
export function decodeMeta(bytes: Uint8Array): MemberMeta {
  if (bytes.byteLength > MAX_META_BYTES) decodeFail('meta', `${bytes.byteLength} bytes exceed ${MAX_META_BYTES}`);
  const raw = unpackHostile(bytes, 'member metadata');
  if (!Array.isArray(raw) || (raw.length !== 7 && raw.length !== 8)) decodeFail('meta', `expected 7 or 8 items, found ${describeRaw(raw)}`);
  if (raw[0] !== META_FORMAT_VERSION) decodeFail('meta[0]', `expected metadata version ${META_FORMAT_VERSION}, found ${describeRaw(raw[0])}`);
  const role = ROLES[raw[1] as number];
  if (typeof raw[1] !== 'number' || role === undefined) decodeFail('meta.role', `expected 0 or 1, found ${describeRaw(raw[1])}`);
  if (!Array.isArray(raw[5])) decodeFail('meta.addrs', `expected an array, found ${describeRaw(raw[5])}`);
  if (!Array.isArray(raw[6]) || raw[6].length % 2 !== 0) decodeFail('meta.tags', `expected [key, value, ...], found ${describeRaw(raw[6])}`);
  const raftRaw = raw[7];
  if (raw.length === 8 && !(Array.isArray(raftRaw) && raftRaw.length === 2 && typeof raftRaw[0] === 'number' && RAFT_ROLES[raftRaw[0]] !== undefined)) {
    decodeFail('meta.raft', `expected [raftRole 0-3, term], found ${describeRaw(raftRaw)}`);
  }
  const tags: Record<string, unknown> = {};
  for (let i = 0; i < raw[6].length; i += 2) Object.defineProperty(tags, String(raw[6][i]), { value: raw[6][i + 1], enumerable: true });
  const meta: MemberMeta = {
    role,
    underlayIp: raw[2] as string,
    version: raw[3] as string,
    ...(raw[4] === null ? {} : { peerId: raw[4] as string }),
    ...(raw[5].length === 0 ? {} : { addrs: raw[5] as string[] }),
    ...(raw[6].length === 0 ? {} : { tags: tags as Record<string, string> }),
    ...(raw.length === 8 ? { raft: { role: RAFT_ROLES[(raftRaw as number[])[0] as number] as MemberRaftRole, term: (raftRaw as unknown[])[1] as number } } : {}),
  };
  try {
    return checkMeta(meta);
  } catch (err) {
    if (err instanceof MembershipError) decodeFail('meta', err.message);
    throw err;
  }
}
