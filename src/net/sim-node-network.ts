/**
 * `NodeNetwork` on the simulated network: streams are the simulator's, kept connections are
 * long-lived simulated streams, and pub/sub floods each message over the kept connections (both
 * directions) with duplicate suppression, as gossipsub's flood publishing over a bounded mesh
 * does. A kept stream that the network breaks (a partition, a crash) reports the loss like a
 * reset TCP connection, so the node runtime's peer manager reacts as it does on libp2p.
 *
 * Deterministic: no clock or randomness of its own; order follows the simulator's events.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { KeepResult, NodeNetwork } from './node-network.js';
import type { SimStreamTransport } from './memory.js';
import type { Address, OpenCallback, OpenOptions, Stream } from './transport.js';

const KEEP_PROTOCOL = '/lashup/sim/keep/1';
/** Message ids remembered to drop duplicates; older ones are forgotten first. */
const SEEN_LIMIT = 50_000;

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

export interface SimNodeNetworkStats {
  published: number;
  received: number;
  forwarded: number;
  duplicates: number;
  keepsOut: number;
  keepsIn: number;
  lost: number;
}

export class SimNodeNetwork implements NodeNetwork {
  readonly stats: SimNodeNetworkStats = { published: 0, received: 0, forwarded: 0, duplicates: 0, keepsOut: 0, keepsIn: 0, lost: 0 };
  private readonly keepsOut = new Map<Address, Stream>();
  private readonly keepsIn = new Map<Address, Stream>();
  private readonly handlers = new Map<string, (data: Uint8Array, from: string) => void>();
  private readonly seen = new Set<string>();
  private seq = 0;
  private stopped = false;

  constructor(
    private readonly streams: SimStreamTransport,
    readonly peerId: string,
  ) {
    streams.handle(KEEP_PROTOCOL, (stream) => {
      const from = stream.remoteAddress;
      this.keepsIn.get(from)?.close();
      this.keepsIn.set(from, stream);
      this.stats.keepsIn = this.keepsIn.size;
      stream.onMessage((m) => this.onFrame(m.data, from));
      stream.onClose(() => {
        if (this.keepsIn.get(from) === stream) this.keepsIn.delete(from);
        this.stats.keepsIn = this.keepsIn.size;
      });
    });
  }

  get localAddress(): Address {
    return this.streams.localAddress;
  }

  get multiaddrs(): string[] {
    return [this.streams.localAddress];
  }

  handle(protocol: string, handler: (stream: Stream) => void): void {
    this.streams.handle(protocol, handler);
  }

  unhandle(protocol: string): void {
    this.streams.unhandle(protocol);
  }

  open(to: Address, protocol: string, callback: OpenCallback, options?: OpenOptions): () => void {
    return this.streams.open(to, protocol, callback, { timeoutMs: options?.timeoutMs ?? 10_000 });
  }

  keep(to: Address, _essential: boolean, onLost: () => void, callback: (result: KeepResult) => void): void {
    if (this.stopped || this.keepsOut.has(to)) {
      queueMicrotask(() => callback(this.stopped ? 'failed' : 'kept'));
      return;
    }
    this.streams.open(
      to,
      KEEP_PROTOCOL,
      (error, stream) => {
        if (error !== null || stream === undefined || this.stopped) {
          stream?.close();
          callback('failed');
          return;
        }
        this.keepsOut.set(to, stream);
        this.stats.keepsOut = this.keepsOut.size;
        stream.onMessage((m) => this.onFrame(m.data, to));
        stream.onClose((err) => {
          if (this.keepsOut.get(to) !== stream) return;
          this.keepsOut.delete(to);
          this.stats.keepsOut = this.keepsOut.size;
          if (err !== undefined && !this.stopped) {
            this.stats.lost++;
            onLost();
          }
        });
        callback('kept');
      },
      { timeoutMs: 10_000 },
    );
  }

  release(to: Address): void {
    const stream = this.keepsOut.get(to);
    if (stream === undefined) return;
    this.keepsOut.delete(to);
    this.stats.keepsOut = this.keepsOut.size;
    stream.close();
  }

  /** The simulated network has no connections of its own: a kept stream either way stands for one. */
  isConnected(to: Address): boolean {
    return this.keepsOut.has(to) || this.keepsIn.has(to);
  }

  setMemberHosts(): void {
    // Simulated hosts are all members: there is no handshake to admit.
  }

  subscribe(topic: string, handler: (data: Uint8Array, from: string) => void): void {
    this.handlers.set(topic, handler);
  }

  publish(topic: string, data: Uint8Array): void {
    if (this.stopped) return;
    const id = `${this.peerId}/${this.seq++}`;
    this.remember(id);
    this.stats.published++;
    this.forward(packr.pack([id, topic, data, this.peerId]), undefined);
  }

  close(): void {
    this.streams.close();
  }

  stop(): Promise<void> {
    this.stopped = true;
    for (const s of [...this.keepsOut.values(), ...this.keepsIn.values()]) s.close();
    this.keepsOut.clear();
    this.keepsIn.clear();
    this.streams.close();
    return Promise.resolve();
  }

  private onFrame(frame: Uint8Array, from: Address): void {
    if (this.stopped) return;
    let decoded: unknown;
    try {
      decoded = unpackr.unpack(frame);
    } catch {
      return;
    }
    if (!Array.isArray(decoded) || typeof decoded[0] !== 'string' || typeof decoded[1] !== 'string' || !(decoded[2] instanceof Uint8Array)) return;
    const [id, topic, data, origin] = decoded as [string, string, Uint8Array, string];
    if (this.seen.has(id)) {
      this.stats.duplicates++;
      return;
    }
    this.remember(id);
    this.stats.received++;
    this.handlers.get(topic)?.(data, origin);
    this.forward(frame, from);
  }

  private forward(frame: Uint8Array, except: Address | undefined): void {
    for (const [address, stream] of [...this.keepsOut, ...this.keepsIn]) {
      if (address === except) continue;
      if (stream.send(frame)) this.stats.forwarded++;
    }
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > SEEN_LIMIT) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }
}
