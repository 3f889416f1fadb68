/**
 * SWIM's packet transport on UDP (`node:dgram`), encrypted and authenticated.
 *
 * Datagram (wire version 2): [version 1][nonce 12][AES-256-GCM ciphertext of (sender wall time
 * in seconds, 4 bytes) + (sender address: family 1, IP 4|16, port 2) + payload][tag 16]. The
 * additional authenticated data is the cluster label, the version and the receiver's address:
 *
 * - receiver bound: a datagram decrypts only at the address it was sent to, so one captured
 *   datagram is not accepted by every other member (each of which had not seen its nonce);
 * - sender bound: the sender's address travels encrypted and authenticated; a datagram claiming
 *   to come from this node (its own datagram reflected back) is dropped, and replies go to the
 *   authenticated sender, not to whoever replayed the datagram (replayed pings were answered to
 *   the replayer's address);
 * - replay window: a datagram is accepted when its time is within `replayWindowMs` of ours, and
 *   nonces are remembered for at least twice that, the longest time a datagram can stay
 *   acceptable after first arriving (sent W ahead of our clock, arriving at once, acceptable
 *   until 2W later). Before, nonces were remembered 60-120 s while times were accepted for
 *   +-120 s, so datagrams replayed ~110 s later were accepted again.
 *
 * 40 bytes over the payload with an IPv4 sender (52 with IPv6), so a 1,400-byte payload fits a
 * 1,500-byte MTU under either IP header.
 *
 * Receiving is hostile-input handling: a datagram that is too short or too long, does not
 * decrypt under any key of the keyring, carries a time outside the replay window, repeats a
 * nonce seen within it, or claims this node as its sender, is dropped and counted by reason;
 * nothing is thrown and nothing is logged per packet (a flood must not become a flood of log
 * lines).
 *
 * Replay protection needs clocks within `replayWindowMs` of each other (NTP does far better).
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import * as dgram from 'node:dgram';
import { isIP } from 'node:net';
import { canonicalIp, formatIp, parseIp, type Clock } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { TransportError, TransportErrorCode } from './errors.js';
import { deriveKey, type Keyring } from './keyring.js';
import type { Address, PacketTransport, ReceivedPacket } from './transport.js';

export const UDP_WIRE_VERSION = 2;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const TIME_BYTES = 4;
/** Sender address: family byte, 4 or 16 address bytes, 2 port bytes. */
const SENDER_BYTES_V4 = 1 + 4 + 2;
const SENDER_BYTES_V6 = 1 + 16 + 2;
/** Bytes a datagram carries beyond its payload (IPv4 sender; add 12 for an IPv6 sender). */
export const UDP_OVERHEAD_BYTES = 1 + NONCE_BYTES + TIME_BYTES + SENDER_BYTES_V4 + TAG_BYTES;
const MAX_OVERHEAD_BYTES = 1 + NONCE_BYTES + TIME_BYTES + SENDER_BYTES_V6 + TAG_BYTES;
const DEFAULT_REPLAY_WINDOW_MS = 60_000;
/**
 * Destinations whose parsed address and additional data are kept (see `Destination`): more than
 * a node sends to in a few minutes on any cluster we measure, and bounded so that a flood of
 * made-up addresses cannot grow it (it is cleared whole when full).
 */
const DESTINATION_CACHE_SIZE = 4096;
/** Nonces drawn from the CSPRNG at a time (12 bytes each): one native call per 256 datagrams. */
const NONCE_POOL_COUNT = 256;

/**
 * What sending to one address needs besides the payload, worked out once per address: every
 * datagram used to parse its destination twice (two regular expressions and an IP parse) and
 * build its additional data anew, for the same few dozen addresses a node talks to. With the
 * nonce pool and the single-buffer seal below, a datagram's send and receive (both ends, on
 * loopback) went from 25-37 to 19-22 us of CPU (median of 12 rounds of 5,000 datagrams; six
 * runs of each over one session).
 */
interface Destination {
  host: string;
  port: number;
  aad: Buffer;
}

export interface UdpTransportOptions {
  /** Address to bind (127.0.0.1, 0.0.0.0, ::). */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** The address others send to, when it differs from the bound one (0.0.0.0 binds, say). */
  advertiseHost?: string;
  keyring: Keyring;
  /** Cluster label: authenticated with every datagram, so two clusters sharing a key stay apart. */
  label: string;
  clock: Clock;
  /** Largest payload, in bytes. Default 1,400. */
  maxPacketBytes?: number;
  /**
   * Datagrams older or newer than this (sender time vs ours) are refused, in ms; nonces are
   * remembered for at least twice as long. Default 60,000: NTP keeps clocks far closer, and a
   * shorter window is a shorter replay opportunity and fewer nonces to remember.
   */
  replayWindowMs?: number;
  logger?: Logger;
}

export interface UdpStats {
  packetsSent: number;
  bytesSent: number;
  packetsReceived: number;
  bytesReceived: number;
  /** Shorter than the header, or longer than the largest datagram. */
  droppedMalformed: number;
  /** No key of the keyring authenticates it (tampered, another cluster, wrong key). */
  droppedDecrypt: number;
  /** Its time is outside the replay window. */
  droppedStale: number;
  /** Its nonce was seen within the window. */
  droppedReplay: number;
  /** It claims this node as its sender (its own datagram reflected back). */
  droppedReflected: number;
  /** A send failed locally (unreachable network, buffer full). */
  sendErrors: number;
}

/** Splits "host:port" or "[v6]:port". */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:]+):(\d{1,5})$/.exec(address);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || isIP(m[1] as string) === 0 || !(port >= 1 && port <= 65535)) {
    throw new TransportError(TransportErrorCode.InvalidAddress, `${JSON.stringify(address)} is not a UDP address; expected "ip:port" or "[ipv6]:port"`, { address });
  }
  return { host: m[1] as string, port };
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The canonical "ip:port" of an address, or undefined when it is not one. */
function canonicalAddress(address: string): string | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:]+):(\d{1,5})$/.exec(address);
  const ip = m === null ? undefined : canonicalIp(m[1] as string);
  const port = Number(m?.[2]);
  return ip === undefined || !(port >= 1 && port <= 65535) ? undefined : formatHostPort(ip, port);
}

/** An address as bytes: family (4|6), the IP, the port (big endian). */
function encodeAddress(address: string): Buffer {
  const { host, port } = parseHostPort(address);
  const ip = parseIp(host) as { family: 4 | 6; bytes: Uint8Array };
  const out = Buffer.alloc(1 + ip.bytes.length + 2);
  out[0] = ip.family;
  out.set(ip.bytes, 1);
  out.writeUInt16BE(port, 1 + ip.bytes.length);
  return out;
}

/** Reads an address written by encodeAddress at the start of `bytes`; undefined when malformed. */
function decodeAddress(bytes: Buffer): { address: string; length: number } | undefined {
  const family = bytes[0];
  const size = family === 4 ? 4 : family === 6 ? 16 : 0;
  if (size === 0 || bytes.length < 1 + size + 2) return undefined;
  const port = bytes.readUInt16BE(1 + size);
  if (port === 0) return undefined;
  return { address: formatHostPort(formatIp(bytes.subarray(1, 1 + size)), port), length: 1 + size + 2 };
}

/**
 * Remembers nonces in two rotating halves (bounded memory, O(1) checks): a nonce is remembered
 * for at least one half and at most two.
 */
class NonceWindow {
  private current = new Set<string>();
  private previous = new Set<string>();
  private rotatedAtMs: number;

  constructor(
    private readonly halfWindowMs: number,
    nowMs: number,
  ) {
    this.rotatedAtMs = nowMs;
  }

  /** True when `nonce` was seen; records it otherwise. */
  seen(nonce: string, nowMs: number): boolean {
    if (nowMs - this.rotatedAtMs >= this.halfWindowMs) {
      // After a silence longer than a whole window both halves are stale.
      this.previous = nowMs - this.rotatedAtMs >= 2 * this.halfWindowMs ? new Set() : this.current;
      this.current = new Set();
      this.rotatedAtMs = nowMs;
    }
    if (this.current.has(nonce) || this.previous.has(nonce)) return true;
    this.current.add(nonce);
    return false;
  }
}

export class UdpTransport implements PacketTransport {
  readonly maxPacketBytes: number;
  readonly stats: UdpStats = {
    packetsSent: 0,
    bytesSent: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    droppedMalformed: 0,
    droppedDecrypt: 0,
    droppedStale: 0,
    droppedReplay: 0,
    droppedReflected: 0,
    sendErrors: 0,
  };
  private handler: ((packet: ReceivedPacket) => void) | undefined;
  private readonly sendKey: Uint8Array;
  private readonly receiveKeys: Uint8Array[];
  private readonly destinations = new Map<Address, Destination>();
  private readonly noncePool = Buffer.alloc(NONCE_BYTES * NONCE_POOL_COUNT);
  /** Next unused nonce in `noncePool`; at the end, the pool is filled again. */
  private nonceIndex = NONCE_POOL_COUNT;
  private readonly aadPrefix: Buffer;
  /** Additional data of datagrams to this node: label, version, own address. */
  private readonly ownAad: Buffer;
  private readonly ownAddressBytes: Buffer;
  private readonly replayWindowMs: number;
  private readonly nonces: NonceWindow;
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly localAddress: Address,
    private readonly options: UdpTransportOptions,
  ) {
    this.maxPacketBytes = options.maxPacketBytes ?? 1400;
    const derive = (key: Uint8Array): Uint8Array => deriveKey(key, 'swim-udp-aes-256-gcm', options.label);
    this.sendKey = derive(options.keyring.primary);
    this.receiveKeys = [this.sendKey, ...options.keyring.accepted.map(derive)];
    this.aadPrefix = Buffer.concat([Buffer.from(options.label, 'utf8'), Buffer.of(0, UDP_WIRE_VERSION)]);
    this.ownAad = this.aadFor(localAddress);
    this.ownAddressBytes = encodeAddress(localAddress);
    this.replayWindowMs = options.replayWindowMs ?? DEFAULT_REPLAY_WINDOW_MS;
    // Times travel in whole seconds: accepted within W + 1 s, so nonces are kept for 2 (W + 1 s).
    this.nonces = new NonceWindow(2 * (this.replayWindowMs + 1000), options.clock.wallMs());
    socket.on('message', (data) => this.receive(data));
    // Socket errors (ICMP unreachable on some platforms, buffer overruns) are not fatal to UDP.
    socket.on('error', (err) => options.logger?.warn({ err: err.message }, 'udp socket error'));
  }

  private aadFor(receiver: Address): Buffer {
    return Buffer.concat([this.aadPrefix, Buffer.from(canonicalAddress(receiver) ?? receiver, 'utf8')]);
  }

  /** Binds the socket. Fails with LASHUP_ERR_NET_BIND_FAILED (address in use, say). */
  static open(options: UdpTransportOptions): Promise<UdpTransport> {
    const family = isIP(options.host) === 6 ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type: family, reuseAddr: false });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(
          new TransportError(
            TransportErrorCode.BindFailed,
            `cannot bind UDP ${formatHostPort(options.host, options.port)}: ${err.message}`,
            { host: options.host, port: options.port },
            { cause: err },
          ),
        );
      };
      socket.once('error', onError);
      socket.bind(options.port, options.host, () => {
        socket.off('error', onError);
        // Bursts of gossip must not overflow the default (often 208 KiB) buffers.
        try {
          socket.setRecvBufferSize(4 * 1024 * 1024);
          socket.setSendBufferSize(4 * 1024 * 1024);
        } catch {
          // Limited by net.core.rmem_max: the defaults still work.
        }
        const port = socket.address().port;
        const host = canonicalIp(options.advertiseHost ?? options.host) ?? options.advertiseHost ?? options.host;
        resolve(new UdpTransport(socket, formatHostPort(host, port), options));
      });
    });
  }

  /** The datagram `send` would put on the wire for `to` (tests capture and replay it). */
  seal(to: Address, data: Uint8Array): Buffer {
    return this.sealFor(this.destination(to), data);
  }

  /**
   * The parsed address and additional data for `to`, cached. Throws LASHUP_ERR_NET_INVALID_ADDRESS
   * for an address that is not "ip:port" (nothing is cached for it).
   */
  private destination(to: Address): Destination {
    const known = this.destinations.get(to);
    if (known !== undefined) return known;
    const { host, port } = parseHostPort(to);
    if (this.destinations.size >= DESTINATION_CACHE_SIZE) this.destinations.clear();
    const destination = { host, port, aad: this.aadFor(to) };
    this.destinations.set(to, destination);
    return destination;
  }

  private nextNonce(): Buffer {
    if (this.nonceIndex === NONCE_POOL_COUNT) {
      randomFillSync(this.noncePool);
      this.nonceIndex = 0;
    }
    const start = NONCE_BYTES * this.nonceIndex++;
    return this.noncePool.subarray(start, start + NONCE_BYTES);
  }

  private sealFor(destination: Destination, data: Uint8Array): Buffer {
    const nonce = this.nextNonce();
    const cipher = createCipheriv('aes-256-gcm', this.sendKey, nonce);
    cipher.setAAD(destination.aad);
    // Time, sender address and payload in one plaintext, encrypted in one call, written once.
    const head = TIME_BYTES + this.ownAddressBytes.length;
    const plain = Buffer.allocUnsafe(head + data.byteLength);
    plain.writeUInt32BE(Math.floor(this.options.clock.wallMs() / 1000) >>> 0, 0);
    this.ownAddressBytes.copy(plain, TIME_BYTES);
    plain.set(data, head);
    const body = cipher.update(plain);
    const tail = cipher.final();
    const datagram = Buffer.allocUnsafe(1 + NONCE_BYTES + body.length + tail.length + TAG_BYTES);
    datagram[0] = UDP_WIRE_VERSION;
    nonce.copy(datagram, 1);
    body.copy(datagram, 1 + NONCE_BYTES);
    tail.copy(datagram, 1 + NONCE_BYTES + body.length);
    cipher.getAuthTag().copy(datagram, datagram.length - TAG_BYTES);
    return datagram;
  }

  send(to: Address, data: Uint8Array): void {
    if (this.closed) throw new TransportError(TransportErrorCode.Closed, `UDP transport ${this.localAddress} is closed`);
    if (data.byteLength > this.maxPacketBytes) {
      throw new TransportError(TransportErrorCode.PacketTooLarge, `packet of ${data.byteLength} bytes to ${to} exceeds the maximum of ${this.maxPacketBytes} bytes`, {
        bytes: data.byteLength,
        maxPacketBytes: this.maxPacketBytes,
        to,
      });
    }
    const destination = this.destination(to);
    const datagram = this.sealFor(destination, data);
    this.stats.packetsSent++;
    this.stats.bytesSent += datagram.length;
    this.socket.send(datagram, destination.port, destination.host, (err) => {
      if (err) this.stats.sendErrors++;
    });
  }

  private receive(datagram: Buffer): void {
    if (this.closed) return;
    this.stats.packetsReceived++;
    this.stats.bytesReceived += datagram.length;
    if (datagram.length < UDP_OVERHEAD_BYTES || datagram.length > this.maxPacketBytes + MAX_OVERHEAD_BYTES || datagram[0] !== UDP_WIRE_VERSION) {
      this.stats.droppedMalformed++;
      return;
    }
    const nonce = datagram.subarray(1, 1 + NONCE_BYTES);
    const tag = datagram.subarray(datagram.length - TAG_BYTES);
    const body = datagram.subarray(1 + NONCE_BYTES, datagram.length - TAG_BYTES);
    let plain: Buffer | undefined;
    for (const key of this.receiveKeys) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, nonce);
        decipher.setAAD(this.ownAad);
        decipher.setAuthTag(tag);
        // GCM is a stream mode: update returns the whole plaintext, final only checks the tag. The
        // plaintext is kept only once final has passed (it throws on a forged or foreign datagram).
        const opened = decipher.update(body);
        decipher.final();
        plain = opened;
        break;
      } catch {
        // Not this key (or not addressed to this node).
      }
    }
    if (plain === undefined) {
      this.stats.droppedDecrypt++;
      return;
    }
    const sender = decodeAddress(plain.subarray(TIME_BYTES));
    if (sender === undefined) {
      // Authentic but malformed: a sender with a bug, counted with the malformed.
      this.stats.droppedMalformed++;
      return;
    }
    if (sender.address === this.localAddress) {
      this.stats.droppedReflected++;
      return;
    }
    const now = this.options.clock.wallMs();
    const sentAtMs = plain.readUInt32BE(0) * 1000;
    if (!(Math.abs(now - sentAtMs) <= this.replayWindowMs + 1000)) {
      this.stats.droppedStale++;
      return;
    }
    if (this.nonces.seen(nonce.toString('latin1'), now)) {
      this.stats.droppedReplay++;
      return;
    }
    const offset = TIME_BYTES + sender.length;
    this.handler?.({ from: sender.address, data: new Uint8Array(plain.buffer, plain.byteOffset + offset, plain.length - offset), receivedAtMs: this.options.clock.nowMs() });
  }

  onPacket(handler: ((packet: ReceivedPacket) => void) | undefined): void {
    this.handler = handler;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handler = undefined;
    this.socket.close();
  }
}
