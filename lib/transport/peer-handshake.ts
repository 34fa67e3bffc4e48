/**
 * The peer handshake (path /peer, wire.md): mutual HMAC-SHA256 challenge-response with the
 * cluster secret, as pure functions (node:crypto only; no sockets, no state). Any thread.
 *
 *   S->C {t:'challenge', v:1, node: serverId, nonce: bin32}
 *   C->S {t:'auth', v:1, node: clientId, nonce: bin32,
 *         mac: HMAC(secret, "ringkv-peer-v1\0c" ‖ serverNonce ‖ clientNonce ‖ clientId ‖ "\0" ‖ serverId)}
 *   S->C {t:'auth-ok', mac: HMAC(secret, "ringkv-peer-v1\0s" ‖ clientNonce ‖ serverNonce ‖ serverId ‖ "\0" ‖ clientId)}
 *
 * Why it holds: each side's fresh 32-byte nonce is inside the other side's MAC, so a recorded
 * handshake is useless on a new connection (replay); both node ids are inside both MACs and
 * the two directions use different labels, so a MAC can neither be reflected back nor be
 * re-labelled with another id. Ids are UTF-8, 1..memberIdBytesMax bytes, without NUL (the
 * separator). MACs and client tokens are compared in constant time (crypto.timingSafeEqual;
 * tokens are hashed first so their length does not leak either). A node without a secret uses
 * the empty key: that only proves both ends run ringkv, hence loopback only.
 *
 * This authenticates, it does not encrypt: use TLS (wss) for confidentiality across hosts.
 * Frozen: the labels, field order and nonce length (protocol v1).
 */

import { Buffer } from 'node:buffer';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { limits } from '../base/limits.js';
import type { WireMessage } from '../protocol/codec.js';

/** Frozen. */
export const peerProtocolVersion = 1;
/** Frozen. */
export const nonceBytes = 32;
const clientLabel = Buffer.from('ringkv-peer-v1\0c', 'latin1');
const serverLabel = Buffer.from('ringkv-peer-v1\0s', 'latin1');
const separator = Buffer.from([0]);
const emptyKey = new Uint8Array(0);

export type Check<T> = { ok: true; value: T } | { ok: false; reason: string };

/** A fresh random nonce for one connection. */
export function newNonce(): Uint8Array {
  return randomBytes(nonceBytes);
}

function mac(secret: Uint8Array | undefined, label: Buffer, nonceA: Uint8Array, nonceB: Uint8Array, idA: string, idB: string): Uint8Array {
  const hmac = createHmac('sha256', secret ?? emptyKey);
  for (const part of [label, nonceA, nonceB, Buffer.from(idA, 'utf8'), separator, Buffer.from(idB, 'utf8')]) hmac.update(part);
  return hmac.digest();
}

/** The dialing side's MAC. */
export function peerClientMac(
  secret: Uint8Array | undefined, serverNonce: Uint8Array, clientNonce: Uint8Array, clientId: string, serverId: string,
): Uint8Array {
  return mac(secret, clientLabel, serverNonce, clientNonce, clientId, serverId);
}

/** The accepting side's MAC. */
export function peerServerMac(
  secret: Uint8Array | undefined, clientNonce: Uint8Array, serverNonce: Uint8Array, serverId: string, clientId: string,
): Uint8Array {
  return mac(secret, serverLabel, clientNonce, serverNonce, serverId, clientId);
}

/** Constant-time equality of a MAC we computed and one from the world. */
export function macsEqual(expected: Uint8Array, given: unknown): boolean {
  return given instanceof Uint8Array && given.length === expected.length && timingSafeEqual(expected, given);
}

/** Constant-time token check; hashing first hides the expected token's length. */
export function tokensEqual(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(expected), digest(given));
}

/** Whether a node id may take part in a handshake. */
export function isValidNodeId(id: unknown): id is string {
  if (typeof id !== 'string' || id.length === 0 || id.includes('\0')) return false;
  return Buffer.byteLength(id, 'utf8') <= limits.memberIdBytesMax;
}

function field(message: WireMessage, name: string): unknown {
  return Object.hasOwn(message, name) ? message[name] : undefined;
}

function isNonce(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === nonceBytes;
}

export const challengeMessage = (serverId: string, serverNonce: Uint8Array): WireMessage => ({
  t: 'challenge', v: peerProtocolVersion, node: serverId, nonce: serverNonce,
});

export const authMessage = (clientId: string, clientNonce: Uint8Array, clientMac: Uint8Array): WireMessage => ({
  t: 'auth', v: peerProtocolVersion, node: clientId, nonce: clientNonce, mac: clientMac,
});

export const authOkMessage = (serverMac: Uint8Array): WireMessage => ({ t: 'auth-ok', mac: serverMac });

/** Client side: reads the server's challenge. */
export function checkChallenge(message: WireMessage): Check<{ serverId: string; serverNonce: Uint8Array }> {
  if (message.t !== 'challenge') return { ok: false, reason: `expected a challenge, got ${message.t.slice(0, 32)}` };
  if (field(message, 'v') !== peerProtocolVersion) return { ok: false, reason: 'unsupported peer protocol version' };
  const serverId = field(message, 'node');
  const serverNonce = field(message, 'nonce');
  if (!isValidNodeId(serverId)) return { ok: false, reason: 'bad node id in challenge' };
  if (!isNonce(serverNonce)) return { ok: false, reason: 'bad nonce in challenge' };
  return { ok: true, value: { serverId, serverNonce } };
}

/** Server side: checks a client's auth against the challenge this connection sent. */
export function checkAuth(
  message: WireMessage, secret: Uint8Array | undefined, serverId: string, serverNonce: Uint8Array,
): Check<{ clientId: string; clientNonce: Uint8Array }> {
  if (message.t !== 'auth') return { ok: false, reason: `expected auth, got ${message.t.slice(0, 32)}` };
  if (field(message, 'v') !== peerProtocolVersion) return { ok: false, reason: 'unsupported peer protocol version' };
  const clientId = field(message, 'node');
  const clientNonce = field(message, 'nonce');
  if (!isValidNodeId(clientId)) return { ok: false, reason: 'bad node id in auth' };
  if (!isNonce(clientNonce)) return { ok: false, reason: 'bad nonce in auth' };
  const expected = peerClientMac(secret, serverNonce, clientNonce, clientId, serverId);
  if (!macsEqual(expected, field(message, 'mac'))) return { ok: false, reason: 'bad mac (wrong cluster secret?)' };
  return { ok: true, value: { clientId, clientNonce } };
}

/** Client side: checks the server's proof that it holds the secret too. */
export function checkAuthOk(
  message: WireMessage, secret: Uint8Array | undefined, ids: { clientId: string; serverId: string },
  nonces: { clientNonce: Uint8Array; serverNonce: Uint8Array },
): Check<undefined> {
  if (message.t !== 'auth-ok') return { ok: false, reason: `expected auth-ok, got ${message.t.slice(0, 32)}` };
  const expected = peerServerMac(secret, nonces.clientNonce, nonces.serverNonce, ids.serverId, ids.clientId);
  if (!macsEqual(expected, field(message, 'mac'))) return { ok: false, reason: 'the server failed to prove the cluster secret' };
  return { ok: true, value: undefined };
}
