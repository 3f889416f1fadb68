/**
 * The transports on the simulated network of `src/sim`: what every protocol is tested and
 * benchmarked on before it meets a socket.
 */
import { copyBytes } from '../common/index.js';
import type { SimHost, SimStreamEnd, StreamFailure } from '../sim/index.js';
import { TransportError, TransportErrorCode } from './errors.js';
import type { Address, OpenCallback, OpenOptions, PacketTransport, ReceivedMessage, ReceivedPacket, Stream, StreamTransport } from './transport.js';

/** Default maximum packet size: what fits a 1,500-byte Ethernet MTU after IP, UDP and AEAD overhead. */
export const DEFAULT_MAX_PACKET_BYTES = 1400;

function failureToError(failure: StreamFailure, detail: { local: Address; remote: Address; protocol: string }): TransportError {
  const where = `${detail.local} -> ${detail.remote} (${detail.protocol})`;
  switch (failure) {
    case 'refused':
      return new TransportError(TransportErrorCode.ConnectionRefused, `connection refused: ${where}`, detail);
    case 'timeout':
      return new TransportError(TransportErrorCode.Timeout, `no answer in time: ${where}`, detail);
    case 'reset':
      return new TransportError(TransportErrorCode.ConnectionReset, `stream reset by peer: ${where}`, detail);
    case 'unknown-host':
      return new TransportError(TransportErrorCode.UnknownAddress, `unknown address ${detail.remote}`, detail);
  }
}

export class SimPacketTransport implements PacketTransport {
  private closed = false;

  constructor(
    private readonly host: SimHost,
    readonly maxPacketBytes: number = DEFAULT_MAX_PACKET_BYTES,
  ) {}

  get localAddress(): Address {
    return this.host.address;
  }

  send(to: Address, data: Uint8Array): void {
    if (this.closed) throw new TransportError(TransportErrorCode.Closed, `packet transport of ${this.host.address} is closed`);
    if (data.byteLength > this.maxPacketBytes) {
      throw new TransportError(TransportErrorCode.PacketTooLarge, `packet of ${data.byteLength} bytes to ${to} exceeds the maximum of ${this.maxPacketBytes} bytes`, {
        bytes: data.byteLength,
        maxPacketBytes: this.maxPacketBytes,
        to,
      });
    }
    // Copy, as a kernel copies a datagram: the caller may reuse its buffer (msgpackr does).
    this.host.sendPacket(to, copyBytes(data));
  }

  onPacket(handler: ((packet: ReceivedPacket) => void) | undefined): void {
    this.host.onPacket(handler === undefined ? undefined : (from, data, receivedAtMs) => handler({ from, data, receivedAtMs }));
  }

  close(): void {
    this.closed = true;
    this.host.onPacket(undefined);
  }
}

class SimStream implements Stream {
  constructor(private readonly end: SimStreamEnd) {}

  get protocol(): string {
    return this.end.protocol;
  }

  get localAddress(): Address {
    return this.end.localAddress;
  }

  get remoteAddress(): Address {
    return this.end.remoteAddress;
  }

  get isOpen(): boolean {
    return this.end.open;
  }

  send(data: Uint8Array): boolean {
    return this.end.send(copyBytes(data));
  }

  onMessage(handler: (message: ReceivedMessage) => void): void {
    this.end.onMessage((data, receivedAtMs) => handler({ data, receivedAtMs }));
  }

  onClose(handler: (error: TransportError | undefined) => void): void {
    this.end.onClose((failure) => handler(failure === undefined ? undefined : failureToError(failure, { local: this.end.localAddress, remote: this.end.remoteAddress, protocol: this.end.protocol })));
  }

  close(): void {
    this.end.close();
  }
}

export class SimStreamTransport implements StreamTransport {
  private readonly protocols = new Set<string>();

  constructor(private readonly host: SimHost) {}

  get localAddress(): Address {
    return this.host.address;
  }

  handle(protocol: string, handler: (stream: Stream) => void): void {
    this.protocols.add(protocol);
    this.host.listen(protocol, (end) => handler(new SimStream(end)));
  }

  unhandle(protocol: string): void {
    this.protocols.delete(protocol);
    this.host.unlisten(protocol);
  }

  open(to: Address, protocol: string, callback: OpenCallback, options: OpenOptions = {}): () => void {
    let done = false;
    const detail = { local: this.host.address, remote: to, protocol };
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : this.host.clock.setTimer(options.timeoutMs, () => {
            if (done) return;
            done = true;
            abort();
            callback(new TransportError(TransportErrorCode.Timeout, `no answer within ${options.timeoutMs} ms: ${to} (${protocol})`, detail));
          });
    const abort = this.host.connect(to, protocol, (failure, end) => {
      if (done) {
        end?.close();
        return;
      }
      done = true;
      timer?.cancel();
      if (failure !== null || end === undefined) callback(failureToError(failure ?? 'reset', detail));
      else callback(null, new SimStream(end));
    });
    return () => {
      done = true;
      timer?.cancel();
      abort();
    };
  }

  close(): void {
    for (const protocol of this.protocols) this.host.unlisten(protocol);
    this.protocols.clear();
  }
}

export interface SimTransports {
  packets: SimPacketTransport;
  streams: SimStreamTransport;
}

/** Both transports of one simulated host (create them again after each restart). */
export function createSimTransports(host: SimHost, options: { maxPacketBytes?: number } = {}): SimTransports {
  return {
    packets: new SimPacketTransport(host, options.maxPacketBytes),
    streams: new SimStreamTransport(host),
  };
}
