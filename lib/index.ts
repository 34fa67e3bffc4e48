/**
 * ringkv's public face (DESIGN.md §5): the embedded store, the error type and its codes.
 */
export { openStore, type BatchOp, type BatchResult, type GetResult, type Key, type Store, type StoreOptions, type Value, type WriteOptions, type WriteResult } from './store/index.js';
export { ErrorCode, RingkvError, isRingkvError } from './base/errors.js';
export type { ConflictPolicy } from './causality/index.js';
export type { SyncMode } from './storage/engine.js';
