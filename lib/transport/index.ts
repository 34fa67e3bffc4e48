/**
 * lib/transport: the node's WebSocket transport (layer 4). One HTTP(S) listener per node with
 * /peer (mutually authenticated node links) and /client (client links); links carry batched
 * msgpack frames of tagged messages (lib/protocol/codec.ts). lib/client and the supervisor use
 * only this face.
 *
 * Where the client in-flight cap lives: in the transport. A node's /client links count
 * requests (messages with a u32 `id`) until a reply with that id (read, written, ring, error)
 * is sent, and answer the excess with KV_OVERLOADED themselves (`tuning.inflightMax`, default
 * limits.clientInflightMax); the supervisor never sees those requests.
 */
export type { WireMessage } from '../protocol/codec.js';
export { FrameLink, type Link } from './frame-link.js';
export { startTransportServer, isLoopbackHost, type TransportServer, type TransportServerOptions } from './transport-server.js';
export { dialPeer, reconnectDelayMs, type DialPeerOptions, type PeerDialer } from './peer-dialer.js';
export { connectClient, type ConnectClientOptions } from './client-connect.js';
export { nodeUrl } from './link-open.js';
export { CloseCode, defaultWireTuning, wireTuning, type WireTuning } from './wire-tuning.js';
export {
  authMessage,
  authOkMessage,
  challengeMessage,
  checkAuth,
  checkAuthOk,
  checkChallenge,
  isValidNodeId,
  macsEqual,
  newNonce,
  nonceBytes,
  peerClientMac,
  peerProtocolVersion,
  peerServerMac,
  tokensEqual,
} from './peer-handshake.js';
