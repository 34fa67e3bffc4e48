/**
 * lib/storage: the per-shard LSM storage engine and its file-system seam. Layer 1.
 * The engine stores bytes and knows nothing of versions (DESIGN.md §3).
 */
export type { HistogramSnapshot } from './engine-metrics.js';
export { Engine, type EngineOptions, type EngineStats, type ScanOptions, type ScanPage, type SyncMode, type WriteOp, type BackgroundRunner } from './engine.js';
export type { FileHandle, FileSystem } from './file-system.js';
export { NodeFileSystem } from './node-file-system.js';
export { MemoryFileSystem, SimulatedCrashError } from './memory-file-system.js';
export { CompactionPool, type CompactionPoolOptions } from './compaction-pool.js';
export { InlineRunner } from './inline-runner.js';
export { partitionRange } from './internal-key.js';
export { registerRecordFilter, recordFilterOf, type RecordFilter } from './record-filter.js';
