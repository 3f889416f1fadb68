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
export type { Exchange, ExchangeOptions } from './exchange.js';
