/**
 * ringkv's public face (DESIGN.md §5): the embedded store, a cluster node, the remote client,
 * the error type and its codes.
 */
export { openStore, type BatchOp, type BatchResult, type GetResult, type Key, type Store, type StoreOptions, type Value, type WriteOptions, type WriteResult } from './store/index.js';
export { ErrorCode, RingkvError, isRingkvError } from './base/errors.js';
export { connect, type Client, type ClientOptions, type RequestOptions } from './client/index.js';
export { startNode, type NodeOptions, type RingkvNode, type StatusJson } from './server/index.js';
export type { ConflictPolicy } from './causality/index.js';
export type { SyncMode } from './storage/engine.js';
