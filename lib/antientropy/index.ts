/**
 * lib/antientropy: Merkle anti-entropy (Dynamo §4.7) — per-partition hash trees fed on every
 * write, the exchange that compares two replicas' trees and moves only the differing keys both
 * ways (initiator and responder, sans-IO), its messages and their validation, a token bucket
 * for its traffic, and the tombstone purge bookkeeping. Pure logic (layer 2): imports
 * lib/base and lib/causality only; time, the store and the network are the caller's.
 */
export * from './tree-hash.js';
export * from './partition-tree.js';
export * from './leaf-diff.js';
export * from './exchange-message.js';
export * from './token-bucket.js';
export * from './exchange.js';
export * from './exchange-responder.js';
export * from './purge-ledger.js';
export * from './sweep-schedule.js';
