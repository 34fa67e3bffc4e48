/**
 * connectClient: the client side of /client (wire.md). Opens the socket, sends
 * `{t:'hello', v:1, token?}` and resolves with the link once the node's `welcome` arrives
 * (its `peerId` is then the node's id). Main thread; the caller (lib/client) owns the link.
 *
 * Failures: RingkvError KV_AUTH when the node refuses the token (error reply KV_AUTH or close
 * 4401); KV_UNAVAILABLE when it cannot connect, the link closes first, or no welcome arrives
 * within `timeoutMs` (which bounds the connect and the welcome each); another code when the
 * node's error reply says so (e.g. KV_INCOMPATIBLE).
 */

import { readFile } from 'node:fs/promises';
import { ErrorCode, RingkvError, isErrorCode } from '../base/errors.js';
import { silentLogger, type Logger } from '../base/log.js';
import { limits } from '../base/limits.js';
import { clientProtocolVersion } from '../protocol/client-messages.js';
import type { WireMessage } from '../protocol/codec.js';
import type { FrameLink, Link } from './frame-link.js';
import { nodeUrl, openLink } from './link-open.js';
import { CloseCode, wireTuning, type WireTuning } from './wire-tuning.js';

export interface ConnectClientOptions {
  token?: string | undefined;
  logger?: Logger | undefined;
  caFile?: string | undefined;
  /** Default limits.wireConnectTimeoutMs. */
  timeoutMs?: number | undefined;
  tuning?: Partial<WireTuning> | undefined;
}

function welcomeOf(message: WireMessage): string | RingkvError {
  if (message.t === 'error') {
    const code = isErrorCode(message.code) ? message.code : ErrorCode.unavailable;
    const text = typeof message.message === 'string' ? message.message : 'refused';
    return new RingkvError(code, `the node refused the connection: ${text.slice(0, 200)}`);
  }
  if (message.t !== 'welcome' || message.v !== clientProtocolVersion || typeof message.node !== 'string') {
    return new RingkvError(ErrorCode.unavailable, `expected a welcome, got ${message.t.slice(0, 32)}`);
  }
  return message.node;
}

/** A client link: resolves after 'welcome'; rejects RingkvError KV_AUTH (token refused) or KV_UNAVAILABLE. */
export async function connectClient(url: string, options: ConnectClientOptions = {}): Promise<Link> {
  const timeoutMs = options.timeoutMs ?? limits.wireConnectTimeoutMs;
  const tuning = wireTuning({ ...options.tuning, handshakeTimeoutMs: timeoutMs });
  const logger = options.logger ?? silentLogger;
  const target = nodeUrl(url, '/client');
  const ca = options.caFile === undefined ? undefined : await readFile(options.caFile);
  return new Promise<Link>((resolve, reject) => {
    const prepare = (link: FrameLink): void => {
      let refusal: RingkvError | undefined;
      link.whenClosed((code, reason) => {
        if (refusal !== undefined) return reject(refusal);
        if (code === CloseCode.auth) return reject(new RingkvError(ErrorCode.auth, `client token refused (${reason})`, { url: target }));
        reject(new RingkvError(ErrorCode.unavailable, `no welcome from ${target} (${code} ${reason})`, { url: target, code }));
      });
      link.onMessage = (message) => {
        const welcome = welcomeOf(message);
        if (welcome instanceof RingkvError) {
          refusal = welcome;
          return link.close(CloseCode.policy, 'handshake failed');
        }
        link.establish(welcome);
        resolve(link);
      };
      const hello = { t: 'hello', v: clientProtocolVersion };
      link.send(options.token === undefined ? hello : { ...hello, token: options.token });
    };
    openLink({ url: target, kind: 'client', tuning, logger, ca, prepare }).catch(reject);
  });
}
