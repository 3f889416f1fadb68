/**
 * What the node runtime needs of its peer-to-peer network, as an interface: streams, pub/sub,
 * kept connections and its own identity. libp2p implements it in the daemon (`Libp2pNode`); the
 * simulated network implements it in the virtual-time tier (`SimNodeNetwork`), so the node
 * runtime, the overlay agent and the dataplane run together on the simulator.
 */
import type { Address, StreamTransport } from './transport.js';

/** How a keep ended: kept, refused by the remote (its inbound limit) or failed. */
export type KeepResult = 'kept' | 'refused' | 'failed';

export interface NodeNetwork extends StreamTransport {
  /** This node's peer id. */
  readonly peerId: string;
  /** Addresses others reach this node at (multiaddrs). */
  readonly multiaddrs: string[];
  /** Counters for /metrics. */
  readonly stats: object;
  /** Best-effort delivery of `data` to every subscriber of `topic` in the cluster. */
  publish(topic: string, data: Uint8Array): void;
  /** One handler per topic; `from` is the sender's peer id. */
  subscribe(topic: string, handler: (data: Uint8Array, from: string) => void): void;
  /**
   * Keeps a connection to `to` open; `callback` tells how the ask ended, `onLost` when a kept
   * connection later fails. Essential keeps (an agent's masters) are never refused.
   */
  keep(to: Address, essential: boolean, onLost: () => void, callback: (result: KeepResult) => void): void;
  /** Lets a kept connection go (it closes once idle). */
  release(to: Address): void;
  /** Whether a connection to `to` (an address as this node dials it) is up: a stream to it opens without a dial. */
  isConnected(to: Address): boolean;
  /** Which remote hosts are members (admitted even when strangers hold every handshake slot). */
  setMemberHosts(isMember: (host: string) => boolean): void;
  stop(): Promise<void>;
}
