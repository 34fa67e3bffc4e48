/**
 * The tunables of the transport (timeouts, buffer and frame bounds) and its close codes.
 * Defaults come from lib/base/limits.ts; tests pass small values. Any thread, pure.
 *
 * Close codes (RFC 6455 §7.4; 4000-4999 are ours). Frozen: clients act on them.
 *   1000 normal · 1001 going away (server or dialer closing) · 1007 bad frame (text, not
 *   msgpack, not an array of messages) · 1008 policy (protocol misuse, e.g. no hello first) ·
 *   1009 too big (sent by ws past maxPayload) · 4401 authentication refused · 4408 handshake,
 *   idle or ping timeout · 4429 overloaded (a reply could not be buffered).
 */

import { limits } from '../base/limits.js';

/** Frozen. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  badFrame: 1007,
  policy: 1008,
  tooBig: 1009,
  auth: 4401,
  timeout: 4408,
  overloaded: 4429,
} as const;

export interface WireTuning {
  /** Largest frame sent or received (ws maxPayload). */
  frameBytesMax: number;
  messagesPerFrameMax: number;
  fragmentsMax: number;
  /** Queued plus socket-buffered bytes per link before send() fails with KV_OVERLOADED. */
  sendBufferBytesMax: number;
  /** Connect, upgrade and handshake (auth or hello/welcome) must each finish within this. */
  handshakeTimeoutMs: number;
  headersTimeoutMs: number;
  /** Server side only: a link that receives nothing for between 1 and 2 times this is closed; 0 disables. */
  idleTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  connectionsPerAddressMax: number;
  /** Refused handshakes per remote address within `authFailureWindowMs` before its upgrades get 429. */
  authFailuresPerAddressMax: number;
  authFailureWindowMs: number;
  /** Server side, /client links: requests in flight per connection (the excess get KV_OVERLOADED). */
  inflightMax: number;
  closeGraceMs: number;
}

export const defaultWireTuning: Readonly<WireTuning> = Object.freeze({
  frameBytesMax: limits.wireFrameBytesMax,
  messagesPerFrameMax: limits.wireMessagesPerFrameMax,
  fragmentsMax: limits.wireFragmentsMax,
  sendBufferBytesMax: limits.wireSendBufferBytesMax,
  handshakeTimeoutMs: limits.wireHandshakeTimeoutMs,
  headersTimeoutMs: limits.wireHeadersTimeoutMs,
  idleTimeoutMs: limits.wireIdleTimeoutMs,
  pingIntervalMs: limits.wirePingIntervalMs,
  pingTimeoutMs: limits.wirePingTimeoutMs,
  reconnectBaseMs: limits.wireReconnectBaseMs,
  reconnectMaxMs: limits.wireReconnectMaxMs,
  connectionsPerAddressMax: limits.wireConnectionsPerAddressMax,
  authFailuresPerAddressMax: limits.wireAuthFailuresPerAddressMax,
  authFailureWindowMs: limits.wireAuthFailureWindowMs,
  inflightMax: limits.clientInflightMax,
  closeGraceMs: limits.wireCloseGraceMs,
});

const mayBeZero = new Set<string>(['idleTimeoutMs']);

/** The defaults with `overrides` applied; RangeError naming the field for a bad value. */
export function wireTuning(overrides: Partial<WireTuning> = {}): WireTuning {
  const tuning: WireTuning = { ...defaultWireTuning };
  for (const [name, value] of Object.entries(overrides)) {
    if (!Object.hasOwn(defaultWireTuning, name)) throw new RangeError(`tuning.${name} is not a transport tunable`);
    if (value === undefined) continue;
    const min = mayBeZero.has(name) ? 0 : 1;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`tuning.${name} must be an integer >= ${min}`);
    }
    (tuning as unknown as Record<string, number>)[name] = value;
  }
  if (tuning.reconnectBaseMs > tuning.reconnectMaxMs) throw new RangeError('tuning.reconnectBaseMs must be <= tuning.reconnectMaxMs');
  return tuning;
}
