/**
 * SWIM's packet transport on UDP (`node:dgram`), encrypted and authenticated.
 *
 * Datagram: [version 1][nonce 12][AES-256-GCM ciphertext of (sender wall time, 8 bytes) +
 * payload][tag 16], with the cluster label and the version as additional authenticated data:
 * 37 bytes over the payload, so a 1,400-byte payload fits a 1,500-byte MTU.
 *
 * Receiving is hostile-input handling: a datagram that is too short or too long, does not
 * decrypt under any key of the keyring, carries a time outside the replay window, or repeats a
 * nonce seen within it, is dropped and counted by reason; nothing is thrown and nothing is
 * logged per packet (a flood must not become a flood of log lines).
 *
 * Replay protection needs clocks within `replayWindowMs` of each other (NTP does far better).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Clock } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { TransportError, TransportErrorCode } from './errors.js';
import { deriveKey, type Keyring } from './keyring.js';
import type { Address, PacketTransport, ReceivedPacket } from './transport.js';

export const UDP_WIRE_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const TIME_BYTES = 8;
/** Bytes a datagram carries beyond its payload. */
export const UDP_OVERHEAD_BYTES = 1 + NONCE_BYTES + TIME_BYTES + TAG_BYTES;

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
  /** Datagrams older or newer than this (sender time vs ours) are refused, in ms. Default 120,000. */
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

/** Remembers nonces for one window, in two rotating halves (bounded memory, O(1) checks). */
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
      this.previous = this.current;
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
    sendErrors: 0,
  };
  private handler: ((packet: ReceivedPacket) => void) | undefined;
  private readonly sendKey: Uint8Array;
  private readonly receiveKeys: Uint8Array[];
  private readonly aad: Buffer;
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
    this.aad = Buffer.concat([Buffer.from(options.label, 'utf8'), Buffer.of(UDP_WIRE_VERSION)]);
    this.nonces = new NonceWindow((options.replayWindowMs ?? 120_000) / 2, options.clock.wallMs());
    socket.on('message', (data, rinfo) => this.receive(data, formatHostPort(rinfo.address, rinfo.port)));
    // Socket errors (ICMP unreachable on some platforms, buffer overruns) are not fatal to UDP.
    socket.on('error', (err) => options.logger?.warn({ err: err.message }, 'udp socket error'));
  }

  /** Binds the socket. Fails with LASHUP_ERR_NET_BIND_FAILED (address in use, say). */
  static open(options: UdpTransportOptions): Promise<UdpTransport> {
    const family = isIP(options.host) === 6 ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type: family, reuseAddr: false });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(new TransportError(TransportErrorCode.BindFailed, `cannot bind UDP ${formatHostPort(options.host, options.port)}: ${err.message}`, { host: options.host, port: options.port }, { cause: err }));
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
        resolve(new UdpTransport(socket, formatHostPort(options.advertiseHost ?? options.host, port), options));
      });
    });
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
    const { host, port } = parseHostPort(to);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.sendKey, nonce);
    cipher.setAAD(this.aad);
    const time = Buffer.alloc(TIME_BYTES);
    time.writeDoubleBE(this.options.clock.wallMs());
    const body = Buffer.concat([cipher.update(time), cipher.update(data), cipher.final()]);
    const datagram = Buffer.concat([Buffer.of(UDP_WIRE_VERSION), nonce, body, cipher.getAuthTag()]);
    this.stats.packetsSent++;
    this.stats.bytesSent += datagram.length;
    this.socket.send(datagram, port, host, (err) => {
      if (err) this.stats.sendErrors++;
    });
  }

  private receive(datagram: Buffer, from: Address): void {
    if (this.closed) return;
    this.stats.packetsReceived++;
    this.stats.bytesReceived += datagram.length;
    if (datagram.length < UDP_OVERHEAD_BYTES || datagram.length > this.maxPacketBytes + UDP_OVERHEAD_BYTES || datagram[0] !== UDP_WIRE_VERSION) {
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
        decipher.setAAD(this.aad);
        decipher.setAuthTag(tag);
        plain = Buffer.concat([decipher.update(body), decipher.final()]);
        break;
      } catch {
        // Not this key.
      }
    }
    if (plain === undefined) {
      this.stats.droppedDecrypt++;
      return;
    }
    const now = this.options.clock.wallMs();
    const sentAt = plain.readDoubleBE(0);
    if (!(Math.abs(now - sentAt) <= (this.options.replayWindowMs ?? 120_000))) {
      this.stats.droppedStale++;
      return;
    }
    if (this.nonces.seen(nonce.toString('latin1'), now)) {
      this.stats.droppedReplay++;
      return;
    }
    this.handler?.({ from, data: new Uint8Array(plain.buffer, plain.byteOffset + TIME_BYTES, plain.length - TIME_BYTES), receivedAtMs: this.options.clock.nowMs() });
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
