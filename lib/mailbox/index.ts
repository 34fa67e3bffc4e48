/**
 * lib/mailbox: SharedArrayBuffer single-producer single-consumer queues of binary frames, the
 * data plane between the supervisor (main thread) and each shard actor (a worker thread): two
 * mailboxes per shard, requests in and replies out. Layer 1: depends on lib/base only.
 *
 * Usage: `const buffer = createMailbox()` on one thread, post `buffer` to the other, attach a
 * `MailboxProducer` on the writing side and a `MailboxConsumer` on the reading side.
 */
export {
  createMailbox,
  frameBytesMaxFor,
  recordBytesOf,
  HEADER_BYTES as MAILBOX_HEADER_BYTES,
  MAILBOX_VERSION,
} from './mailbox-layout.js';
export { MailboxProducer, type MailboxProducerOptions, type MailboxWriteOptions } from './mailbox-producer.js';
export {
  MailboxConsumer,
  type FrameVisitor,
  type SpanVisitor,
  type MailboxConsumerOptions,
  type MailboxPumpHandler,
  type MailboxPumpOptions,
} from './mailbox-consumer.js';
