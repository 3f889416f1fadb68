import { LashupError, type ErrorDetails } from '../common/index.js';

/**
 * Transport failure codes. Shared by every transport (in-memory, UDP, libp2p) so protocol code
 * handles one vocabulary.
 */
export const TransportErrorCode = {
  /** The peer is reachable but nobody accepts this protocol (or the peer process is down). */
  ConnectionRefused: 'LASHUP_ERR_NET_CONNECTION_REFUSED',
  /** No answer within the allowed time (partition, overload, or a pre-shared key mismatch on libp2p). */
  Timeout: 'LASHUP_ERR_NET_TIMEOUT',
  /** An established stream broke (peer crashed, partition, reset). */
  ConnectionReset: 'LASHUP_ERR_NET_CONNECTION_RESET',
  /** The address is not known to the transport. */
  UnknownAddress: 'LASHUP_ERR_NET_UNKNOWN_ADDRESS',
  /** A packet exceeds the transport's maximum packet size. */
  PacketTooLarge: 'LASHUP_ERR_NET_PACKET_TOO_LARGE',
  /** A cluster key is malformed (not 32 bytes of base64) or the keyring is empty. */
  InvalidKey: 'LASHUP_ERR_NET_INVALID_KEY',
  /** An address is not one this transport can use ("host:port", a multiaddr, a peer id). */
  InvalidAddress: 'LASHUP_ERR_NET_INVALID_ADDRESS',
  /** The libp2p handshake failed: most often a pre-shared key (cluster key) mismatch. */
  HandshakeFailed: 'LASHUP_ERR_NET_HANDSHAKE_FAILED',
  /** A socket could not be bound (address in use, permission). */
  BindFailed: 'LASHUP_ERR_NET_BIND_FAILED',
  /** The transport or stream was closed locally. */
  Closed: 'LASHUP_ERR_NET_CLOSED',
} as const;

export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

export class TransportError extends LashupError {
  declare readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
