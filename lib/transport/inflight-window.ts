/**
 * The in-flight cap of one client link at a node (RELIABILITY.md B7; wire.md: "more than
 * clientInflightMax requests in flight on one connection: the excess get KV_OVERLOADED").
 * Main thread, owned by its FrameLink. Pure bookkeeping: it decides, the link replies.
 *
 * A request is a message with an own u32 `id`; it is in flight from its arrival until the node
 * sends a reply (read, written, ring or error) with that id. Messages without a u32 id pass
 * through uncounted: the supervisor's validation answers them at once. Invariant: at most
 * `inflightMax` ids are held.
 */

import { ErrorCode } from '../base/errors.js';
import { messageId } from '../protocol/client-messages.js';
import type { WireMessage } from '../protocol/codec.js';

const replyTags = new Set(['read', 'written', 'ring', 'error']);

export type Admission = { ok: true } | { ok: false; id: number; code: ErrorCode; message: string };

export class InflightWindow {
  readonly #ids = new Set<number>();

  constructor(readonly inflightMax: number) {}

  /** Whether a received message may go on to the supervisor; if so, its id is now in flight. */
  admit(message: WireMessage): Admission {
    if (!Object.hasOwn(message, 'id')) return { ok: true };
    const id = messageId(message);
    if (id !== message.id) return { ok: true };
    if (this.#ids.has(id)) return { ok: false, id, code: ErrorCode.badRequest, message: `id ${id} is already in flight` };
    if (this.#ids.size >= this.inflightMax) {
      return { ok: false, id, code: ErrorCode.overloaded, message: `more than ${this.inflightMax} requests in flight` };
    }
    this.#ids.add(id);
    return { ok: true };
  }

  /** Notes a message the node sends: a reply frees its id. */
  release(message: WireMessage): void {
    if (replyTags.has(message.t)) this.#ids.delete(messageId(message));
  }
}
