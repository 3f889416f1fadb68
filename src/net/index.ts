export { TransportError, TransportErrorCode } from './errors.js';
export type {
  Address,
  ReceivedPacket,
  PacketTransport,
  ReceivedMessage,
  Stream,
  StreamTransport,
  OpenOptions,
  OpenCallback,
} from './transport.js';
export { SimPacketTransport, SimStreamTransport, createSimTransports, DEFAULT_MAX_PACKET_BYTES } from './memory.js';
export type { SimTransports } from './memory.js';
export { startExchange } from './exchange.js';
export type { Exchange, ExchangeFailure, ExchangeFailureKind, ExchangeOptions } from './exchange.js';
export { UdpTransport, parseHostPort, formatHostPort, UDP_OVERHEAD_BYTES, UDP_WIRE_VERSION } from './udp.js';
export type { UdpTransportOptions, UdpStats } from './udp.js';
export { Libp2pNode, mapLibp2pError, DEFAULT_MAX_FRAME_BYTES, KEEP_PROTOCOL } from './libp2p.js';
export { outboundStreamsOf } from './gossipsub-streams.js';
export type { Libp2pNodeOptions, Libp2pStats } from './libp2p.js';
export type { KeepResult, NodeNetwork } from './node-network.js';
export { SimNodeNetwork } from './sim-node-network.js';
export { PeerSet } from './peer-set.js';
export type { PeerSetOptions, PeerCandidate, PeerPlan, PeerSetStats } from './peer-set.js';
export { InboundGate } from './inbound-gate.js';
export type { InboundGateOptions, InboundGateStats } from './inbound-gate.js';
export { StreamPacketTransport, PACKET_PROTOCOL } from './stream-packets.js';
export type { StreamPacketStats } from './stream-packets.js';
export { RpcClient, RpcServer } from './rpc.js';
export type { RpcCallback, RpcRequestOptions, RpcHandler } from './rpc.js';
export { generateClusterKey, parseClusterKey, keyringFrom, deriveKey, pskFromClusterKey, CLUSTER_KEY_BYTES } from './keyring.js';
export type { Keyring } from './keyring.js';
export { removeStaleSocket, UNIX_SOCKET_IN_USE } from './unix-socket.js';
