/**
 * The accepting side of both handshakes, run on a fresh FrameLink by the transport server.
 * Main thread. Until the handshake succeeds nothing reaches the supervisor: a peer must answer
 * the challenge with a valid MAC, a client must send `hello` (with the token when the node has
 * one) as its first message. A refusal is an error reply (id 0) and a close: 4401 for
 * authentication (KV_AUTH), 1008 for a client whose first message is not a valid hello.
 * The handshake timer of FrameLink bounds how long a silent connection may stay.
 */

import { ErrorCode } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { errorReply, parseClientRequest, welcomeReply } from '../protocol/client-messages.js';
import type { FrameLink, Link } from './frame-link.js';
import { authOkMessage, challengeMessage, checkAuth, newNonce, peerServerMac, tokensEqual } from './peer-handshake.js';
import { CloseCode } from './wire-tuning.js';

export interface AcceptContext {
  nodeId: string;
  secret: Uint8Array | undefined;
  clientToken: string | undefined;
  logger: Logger;
  onPeer(link: Link): void;
  onClient(link: Link): void;
  /** A handshake was refused for its credentials (the auth throttle counts it). */
  onAuthFailure?(link: FrameLink): void;
}

function refuse(link: FrameLink, code: ErrorCode, message: string, closeCode: number): void {
  link.send(errorReply(0, code, message));
  link.close(closeCode, message);
}

/** Sends the challenge and waits for the dialer's auth. */
export function acceptPeer(link: FrameLink, context: AcceptContext): void {
  const serverNonce = newNonce();
  link.onMessage = (message) => {
    const auth = checkAuth(message, context.secret, context.nodeId, serverNonce);
    if (!auth.ok) {
      context.logger.warn({ remote: link.remoteAddress, reason: auth.reason }, 'peer authentication refused');
      context.onAuthFailure?.(link);
      refuse(link, ErrorCode.auth, 'peer authentication refused', CloseCode.auth);
      return;
    }
    const { clientId, clientNonce } = auth.value;
    link.send(authOkMessage(peerServerMac(context.secret, clientNonce, serverNonce, context.nodeId, clientId)));
    link.establish(clientId);
    context.logger.debug({ remote: link.remoteAddress, peer: clientId }, 'peer authenticated');
    context.onPeer(link);
  };
  link.send(challengeMessage(context.nodeId, serverNonce));
}

/** Waits for the client's hello; checks its token. */
export function acceptClient(link: FrameLink, context: AcceptContext): void {
  link.onMessage = (message) => {
    const parsed = parseClientRequest(message);
    if (!parsed.ok) return refuse(link, parsed.code, parsed.message, CloseCode.policy);
    const hello = parsed.request;
    if (hello.t !== 'hello') return refuse(link, ErrorCode.badRequest, 'the first message must be hello', CloseCode.policy);
    if (context.clientToken !== undefined && !tokensEqual(context.clientToken, hello.token)) {
      context.logger.warn({ remote: link.remoteAddress }, 'client token refused');
      context.onAuthFailure?.(link);
      return refuse(link, ErrorCode.auth, 'client token refused', CloseCode.auth);
    }
    link.send(welcomeReply(context.nodeId));
    link.establish(undefined);
    context.onClient(link);
  };
}
