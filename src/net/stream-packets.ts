/**
 * Best-effort packets carried over reliable streams: what `membership.packetTransport: "libp2p"`
 * uses, for sites that open one TCP port and no UDP. One long-lived stream per destination;
 * packets sent while it opens wait in a short queue (dropped beyond it, as a full socket buffer
 * would drop datagrams); a failed stream drops what it held and the next packet opens another.
 * The protocols above still treat every packet as possibly lost.
 */
import { TransportError, TransportErrorCode } from './errors.js';
import type { Address, PacketTransport, ReceivedPacket, Stream, StreamTransport } from './transport.js';

export const PACKET_PROTOCOL = '/lashup/swim/packet/1';
const MAX_QUEUED = 64;

export interface StreamPacketStats {
  packetsSent: number;
  packetsReceived: number;
  /** Packets dropped: queue full while a stream opened, or the stream failed. */
  packetsDropped: number;
  streamsOpened: number;
  openFailures: number;
}

interface Outbound {
  stream: Stream | undefined;
  queue: Uint8Array[];
}

export class StreamPacketTransport implements PacketTransport {
  readonly stats: StreamPacketStats = { packetsSent: 0, packetsReceived: 0, packetsDropped: 0, streamsOpened: 0, openFailures: 0 };
  private readonly outbound = new Map<Address, Outbound>();
  private readonly inbound = new Set<Stream>();
  private handler: ((packet: ReceivedPacket) => void) | undefined;
  private closed = false;

  constructor(
    private readonly streams: StreamTransport,
    readonly maxPacketBytes = 1400,
    private readonly openTimeoutMs = 2000,
  ) {
    streams.handle(PACKET_PROTOCOL, (stream) => this.accept(stream));
  }

  get localAddress(): Address {
    return this.streams.localAddress;
  }

  send(to: Address, data: Uint8Array): void {
    if (this.closed) throw new TransportError(TransportErrorCode.Closed, 'packet transport is closed');
    if (data.byteLength > this.maxPacketBytes) {
      throw new TransportError(TransportErrorCode.PacketTooLarge, `packet of ${data.byteLength} bytes to ${to} exceeds the maximum of ${this.maxPacketBytes} bytes`, {
        bytes: data.byteLength,
        maxPacketBytes: this.maxPacketBytes,
        to,
      });
    }
    const copy = data.slice();
    const existing = this.outbound.get(to);
    if (existing?.stream?.isOpen === true) {
      this.stats.packetsSent++;
      if (!existing.stream.send(copy)) this.stats.packetsDropped++;
      return;
    }
    if (existing !== undefined && existing.stream === undefined) {
      if (existing.queue.length >= MAX_QUEUED) this.stats.packetsDropped++;
      else existing.queue.push(copy);
      return;
    }
    const entry: Outbound = { stream: undefined, queue: [copy] };
    this.outbound.set(to, entry);
    this.streams.open(
      to,
      PACKET_PROTOCOL,
      (error, stream) => {
        if (this.outbound.get(to) !== entry) {
          stream?.close();
          return;
        }
        if (error !== null || stream === undefined || this.closed) {
          this.stats.openFailures++;
          this.stats.packetsDropped += entry.queue.length;
          this.outbound.delete(to);
          stream?.close();
          return;
        }
        this.stats.streamsOpened++;
        entry.stream = stream;
        stream.onClose(() => {
          if (this.outbound.get(to) === entry) this.outbound.delete(to);
        });
        stream.onMessage(() => undefined);
        for (const packet of entry.queue) {
          this.stats.packetsSent++;
          stream.send(packet);
        }
        entry.queue = [];
      },
      { timeoutMs: this.openTimeoutMs },
    );
  }

  private accept(stream: Stream): void {
    if (this.closed) {
      stream.close();
      return;
    }
    this.inbound.add(stream);
    stream.onClose(() => this.inbound.delete(stream));
    stream.onMessage((message) => {
      this.stats.packetsReceived++;
      this.handler?.({ from: stream.remoteAddress, data: message.data, receivedAtMs: message.receivedAtMs });
    });
  }

  onPacket(handler: ((packet: ReceivedPacket) => void) | undefined): void {
    this.handler = handler;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handler = undefined;
    this.streams.unhandle(PACKET_PROTOCOL);
    for (const entry of this.outbound.values()) entry.stream?.close();
    for (const stream of this.inbound) stream.close();
    this.outbound.clear();
    this.inbound.clear();
  }
}
