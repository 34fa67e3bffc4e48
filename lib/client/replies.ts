/**
 * Client-side checking of a node's replies (wire.md): `read`, `written` and `error` become a
 * GetResult, a WriteResult or a thrown RingkvError carrying the node's code. A node is
 * trusted to be ours but not to be bug-free, so a malformed reply is an error, never a
 * silently wrong result; for a write it is KV_INDETERMINATE (the node may have applied it).
 *
 * Pure functions, any thread.
 */

import { ErrorCode, RingkvError, isErrorCode } from '../base/errors.js';
import type { WireMessage } from '../transport/index.js';

// The remote client returns exactly the embedded Store's result shapes.
import type { GetResult, WriteResult } from '../store/store-api.js';
export type { GetResult, WriteResult };

function malformed(write: boolean, what: string, node: string | undefined): RingkvError {
  const code = write ? ErrorCode.indeterminate : ErrorCode.badRequest;
  return new RingkvError(code, `malformed reply from node ${node ?? '?'}: ${what}`, { node });
}

/** The RingkvError of an `error` reply; an unknown code is indeterminate for writes. */
export function errorOfReply(message: WireMessage, write: boolean, node: string | undefined): RingkvError {
  const text = typeof message.message === 'string' ? message.message : 'no message';
  if (isErrorCode(message.code)) return new RingkvError(message.code, text, { node });
  return malformed(write, `unknown error code ${JSON.stringify(message.code)}: ${text}`, node);
}

export function getResultOf(message: WireMessage, node: string | undefined): GetResult {
  if (message.t === 'error') throw errorOfReply(message, false, node);
  if (message.t !== 'read') throw malformed(false, `expected read, got ${JSON.stringify(message.t)}`, node);
  const { found, values, context } = message;
  if (typeof found !== 'boolean') throw malformed(false, 'found is not a boolean', node);
  if (!Array.isArray(values) || !values.every((v) => v instanceof Uint8Array)) throw malformed(false, 'values is not an array of bytes', node);
  if (!(context instanceof Uint8Array)) throw malformed(false, 'context is not bytes', node);
  return { found, values: values as Uint8Array[], context };
}

export function writeResultOf(message: WireMessage, node: string | undefined): WriteResult {
  if (message.t === 'error') throw errorOfReply(message, true, node);
  if (message.t !== 'written') throw malformed(true, `expected written, got ${JSON.stringify(message.t)}`, node);
  if (!(message.context instanceof Uint8Array)) throw malformed(true, 'context is not bytes', node);
  return { context: message.context };
}
