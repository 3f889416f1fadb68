/**
 * The transport interfaces every protocol speaks. They are callback-based on purpose: protocol
 * cores run inside the simulator's synchronous event loop, where a Promise continuation would run
 * only after the loop yields, at the wrong virtual time. Real transports implement the same
 * interfaces on sockets.
 *
 * Every received packet or message carries its receive time (`receivedAtMs`, on the clock of the
 * receiving node), so protocols measure round trips without reading a clock themselves.
 */
import type { TransportError } from './errors.js';

/** An opaque transport address ("host:port" for UDP, a peer id for libp2p, any string in simulation). */
export type Address = string;

export interface ReceivedPacket {
  readonly from: Address;
  readonly data: Uint8Array;
  /** Receive time, in milliseconds on the receiving node's monotonic clock. */
  readonly receivedAtMs: number;
}

/** Best-effort datagrams: may be lost, duplicated or reordered. */
export interface PacketTransport {
  readonly localAddress: Address;
  /** Largest payload `send` accepts, in bytes. */
  readonly maxPacketBytes: number;
  /**
   * Sends one datagram. Never reports network failures (that is what best effort means); throws
   * a TransportError only for local misuse: a payload above `maxPacketBytes`, or a closed transport.
   */
  send(to: Address, data: Uint8Array): void;
  /** Sets (or with undefined, clears) the single receive handler. */
  onPacket(handler: ((packet: ReceivedPacket) => void) | undefined): void;
  close(): void;
}

export interface ReceivedMessage {
  readonly data: Uint8Array;
  /** Receive time, in milliseconds on the receiving node's monotonic clock. */
  readonly receivedAtMs: number;
}

/** A reliable, ordered, message-framed, bidirectional stream. */
export interface Stream {
  readonly protocol: string;
  readonly localAddress: Address;
  readonly remoteAddress: Address;
  readonly isOpen: boolean;
  /** Queues one message; returns false when the stream is closed (the message is dropped). */
  send(data: Uint8Array): boolean;
  /** Sets the message handler; messages that arrived before it was set are delivered at once. */
  onMessage(handler: (message: ReceivedMessage) => void): void;
  /** Called once when the stream ends: `undefined` after a clean close, an error otherwise. */
  onClose(handler: (error: TransportError | undefined) => void): void;
  close(): void;
}

export interface OpenOptions {
  /** Give up after this many milliseconds with LASHUP_ERR_NET_TIMEOUT. */
  timeoutMs?: number;
}

export type OpenCallback = (error: TransportError | null, stream?: Stream) => void;

export interface StreamTransport {
  readonly localAddress: Address;
  /** Accepts inbound streams for `protocol` (one handler per protocol; a new one replaces it). */
  handle(protocol: string, handler: (stream: Stream) => void): void;
  unhandle(protocol: string): void;
  /**
   * Opens a stream; `callback` runs exactly once, unless the returned abort function is called
   * first (then it never runs).
   */
  open(to: Address, protocol: string, callback: OpenCallback, options?: OpenOptions): () => void;
  close(): void;
}
