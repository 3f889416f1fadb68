/**
 * The SWIM wire format (msgpack, protocol version 1).
 *
 * A packet is one msgpack array: `[version, message, message, ...]`, a compound of up to
 * `maxPacketBytes`. Every message is an array whose first item is its type:
 *
 *   ping          [1, seq, targetName, sourceName]
 *   indirect ping [2, seq, targetName, targetAddress, wantNack, sourceName]
 *   ack           [3, seq]
 *   nack          [4, seq]
 *   suspect       [5, incarnation, name, fromName]
 *   alive         [6, incarnation, name, address, meta]
 *   dead          [7, incarnation, name, fromName]      (fromName === name: a graceful leave)
 *
 * Message types are append-only: a type, once released, keeps its meaning and fields. A decoder
 * skips types it does not know (a newer peer may send them) and counts them. Messages are encoded
 * once and concatenated into packets, so a broadcast queued for many packets is encoded once.
 *
 * Decoding treats its input as hostile: a packet that is not msgpack, not an array, of another
 * version, or that has a known message with a wrong field is refused as a whole with a typed
 * error (the receiver drops and counts it); nothing else escapes.
 */
import { Packr, Unpackr } from 'msgpackr';
import { MembershipError, MembershipErrorCode } from './errors.js';
import { MAX_INCARNATION } from './table.js';

export const PROTOCOL_VERSION = 1;

export const MessageType = {
  Ping: 1,
  IndirectPing: 2,
  Ack: 3,
  Nack: 4,
  Suspect: 5,
  Alive: 6,
  Dead: 7,
} as const;

/** Longest member name accepted (node ids and hostnames are far shorter). */
export const MAX_NAME_LENGTH = 128;
/** Longest transport address accepted ("[v6]:port", a multiaddr, a peer id). */
export const MAX_ADDRESS_LENGTH = 256;
/** Largest metadata a member may carry, in bytes. */
export const MAX_META_BYTES = 512;
/** Largest sequence number (unsigned 32-bit); sequence numbers wrap. */
export const MAX_SEQ = 0xffffffff;

export interface PingMessage {
  type: typeof MessageType.Ping;
  seq: number;
  target: string;
  source: string;
}
export interface IndirectPingMessage {
  type: typeof MessageType.IndirectPing;
  seq: number;
  target: string;
  targetAddress: string;
  wantNack: boolean;
  source: string;
}
export interface AckMessage {
  type: typeof MessageType.Ack;
  seq: number;
}
export interface NackMessage {
  type: typeof MessageType.Nack;
  seq: number;
}
export interface SuspectMessage {
  type: typeof MessageType.Suspect;
  incarnation: number;
  name: string;
  from: string;
}
export interface AliveMessage {
  type: typeof MessageType.Alive;
  incarnation: number;
  name: string;
  address: string;
  meta: Uint8Array;
}
export interface DeadMessage {
  type: typeof MessageType.Dead;
  incarnation: number;
  name: string;
  from: string;
}

export type SwimMessage = PingMessage | IndirectPingMessage | AckMessage | NackMessage | SuspectMessage | AliveMessage | DeadMessage;

export interface DecodedPacket {
  messages: SwimMessage[];
  /** Messages of types this build does not know, skipped. */
  unknown: number;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
// One decoder for every input: without records (useRecords: false) msgpackr keeps no state from
// one input to the next, and a decoder per packet would cost more than the decoding at 10,000
// simulated nodes.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

function toWire(message: SwimMessage): unknown[] {
  switch (message.type) {
    case MessageType.Ping:
      return [message.type, message.seq, message.target, message.source];
    case MessageType.IndirectPing:
      return [message.type, message.seq, message.target, message.targetAddress, message.wantNack, message.source];
    case MessageType.Ack:
    case MessageType.Nack:
      return [message.type, message.seq];
    case MessageType.Suspect:
    case MessageType.Dead:
      return [message.type, message.incarnation, message.name, message.from];
    case MessageType.Alive:
      return [message.type, message.incarnation, message.name, message.address, message.meta];
  }
}

/** Encodes one message (to be put into packets with `buildPacket`). */
export function encodeMessage(message: SwimMessage): Uint8Array {
  // A copy: the packer's buffer is shared between calls, and broadcasts live a long time.
  return packr.pack(toWire(message)).slice();
}

/** Bytes `buildPacket` adds around messages: the array header and the version. */
export function packetOverheadBytes(messageCount: number): number {
  return arrayHeaderBytes(messageCount + 1) + 1;
}

function arrayHeaderBytes(items: number): number {
  return items < 16 ? 1 : items < 65536 ? 3 : 5;
}

/** Concatenates encoded messages into one packet. */
export function buildPacket(messages: readonly Uint8Array[]): Uint8Array {
  const items = messages.length + 1;
  let size = packetOverheadBytes(messages.length);
  for (const m of messages) size += m.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  if (items < 16) out[at++] = 0x90 | items;
  else if (items < 65536) {
    out[at++] = 0xdc;
    out[at++] = items >> 8;
    out[at++] = items & 0xff;
  } else {
    out[at++] = 0xdd;
    out[at++] = (items >>> 24) & 0xff;
    out[at++] = (items >>> 16) & 0xff;
    out[at++] = (items >>> 8) & 0xff;
    out[at++] = items & 0xff;
  }
  out[at++] = PROTOCOL_VERSION; // a positive fixint
  for (const m of messages) {
    out.set(m, at);
    at += m.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------- decoding

export function decodeFail(path: string, message: string): never {
  throw new MembershipError(MembershipErrorCode.Decode, `malformed SWIM message at ${path}: ${message}`, { path });
}

export function describeRaw(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (value instanceof Map) return `a map of ${value.size}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

export function readUint32(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_SEQ) {
    decodeFail(path, `expected an unsigned 32-bit integer, found ${describeRaw(value)}`);
  }
  return value;
}

export function readIncarnation(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_INCARNATION) {
    decodeFail(path, `expected an incarnation (0 to ${MAX_INCARNATION}), found ${describeRaw(value)}`);
  }
  return value;
}

export function readName(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH) {
    decodeFail(path, `expected a member name of 1 to ${MAX_NAME_LENGTH} characters, found ${describeRaw(value)}`);
  }
  return value;
}

export function readAddress(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ADDRESS_LENGTH) {
    decodeFail(path, `expected an address of 1 to ${MAX_ADDRESS_LENGTH} characters, found ${describeRaw(value)}`);
  }
  return value;
}

export function readMeta(value: unknown, path: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength > MAX_META_BYTES) {
    decodeFail(path, `expected metadata of at most ${MAX_META_BYTES} bytes, found ${describeRaw(value)}`);
  }
  return value;
}

function expectFields(raw: unknown[], count: number, path: string, what: string): void {
  if (raw.length !== count) decodeFail(path, `a ${what} message has ${count} items, found ${raw.length}`);
}

/** One message from its raw array, or undefined for an unknown type. */
function decodeMessage(raw: unknown, path: string): SwimMessage | undefined {
  if (!Array.isArray(raw) || raw.length === 0) decodeFail(path, `expected a message array, found ${describeRaw(raw)}`);
  const type = raw[0];
  switch (type) {
    case MessageType.Ping:
      expectFields(raw, 4, path, 'ping');
      return { type, seq: readUint32(raw[1], `${path}.seq`), target: readName(raw[2], `${path}.target`), source: readName(raw[3], `${path}.source`) };
    case MessageType.IndirectPing:
      expectFields(raw, 6, path, 'indirect ping');
      if (typeof raw[4] !== 'boolean') decodeFail(`${path}.wantNack`, `expected a boolean, found ${describeRaw(raw[4])}`);
      return {
        type,
        seq: readUint32(raw[1], `${path}.seq`),
        target: readName(raw[2], `${path}.target`),
        targetAddress: readAddress(raw[3], `${path}.targetAddress`),
        wantNack: raw[4],
        source: readName(raw[5], `${path}.source`),
      };
    case MessageType.Ack:
    case MessageType.Nack:
      expectFields(raw, 2, path, type === MessageType.Ack ? 'ack' : 'nack');
      return { type, seq: readUint32(raw[1], `${path}.seq`) };
    case MessageType.Suspect:
    case MessageType.Dead:
      expectFields(raw, 4, path, type === MessageType.Suspect ? 'suspect' : 'dead');
      return {
        type,
        incarnation: readIncarnation(raw[1], `${path}.incarnation`),
        name: readName(raw[2], `${path}.name`),
        from: readName(raw[3], `${path}.from`),
      };
    case MessageType.Alive:
      expectFields(raw, 5, path, 'alive');
      return {
        type,
        incarnation: readIncarnation(raw[1], `${path}.incarnation`),
        name: readName(raw[2], `${path}.name`),
        address: readAddress(raw[3], `${path}.address`),
        meta: readMeta(raw[4], `${path}.meta`),
      };
    default:
      if (typeof type !== 'number' || !Number.isInteger(type) || type < 1) decodeFail(`${path}[0]`, `expected a message type, found ${describeRaw(type)}`);
      return undefined;
  }
}

/** Parses msgpack bytes, mapping every failure to a typed decode error. */
export function unpackHostile(bytes: Uint8Array, what: string): unknown {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) decodeFail(what, 'empty input');
  try {
    return unpackr.unpack(bytes);
  } catch (err) {
    throw new MembershipError(MembershipErrorCode.Decode, `malformed ${what}: not valid msgpack (${err instanceof Error ? err.message : String(err)})`, {}, { cause: err });
  }
}

/** Decodes a packet. Throws only MembershipError (decode, unsupported version). */
export function decodePacket(bytes: Uint8Array, maxBytes: number): DecodedPacket {
  if (bytes.byteLength > maxBytes) decodeFail('packet', `${bytes.byteLength} bytes exceed the limit of ${maxBytes}`);
  const raw = unpackHostile(bytes, 'SWIM packet');
  if (!Array.isArray(raw) || raw.length < 1) decodeFail('packet', `expected [version, messages...], found ${describeRaw(raw)}`);
  if (raw[0] !== PROTOCOL_VERSION) {
    throw new MembershipError(MembershipErrorCode.UnsupportedVersion, `SWIM protocol version ${String(raw[0])} is not supported; this build speaks version ${PROTOCOL_VERSION}`, {
      version: raw[0],
      supported: [PROTOCOL_VERSION],
    });
  }
  const messages: SwimMessage[] = [];
  let unknown = 0;
  for (let i = 1; i < raw.length; i++) {
    const message = decodeMessage(raw[i], `packet[${i}]`);
    if (message === undefined) unknown++;
    else messages.push(message);
  }
  return { messages, unknown };
}
