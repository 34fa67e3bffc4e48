/**
 * Compaction record filters: a small hook through which the layer above the engine rewrites
 * the values compaction carries forward (RocksDB's CompactionFilter), without the engine
 * knowing what the bytes mean. Compaction jobs are plain data that may run on a pool thread,
 * so a filter is named, registered in every thread that runs jobs (the shard worker for inline
 * jobs, the pool's task file), and called with the wall-clock time the engine put in the job.
 *
 * A filter returns the value to keep: the same array when unchanged. It runs on every inline
 * value (never on tombstones, nor on values kept in the value log: the LSM holds only their
 * pointers) and must be pure and deterministic, and must not grow values
 * past the engine's entry bound. An unknown name fails the job (the engine reports it).
 */

export type RecordFilter = (key: Uint8Array, value: Uint8Array, nowMs: number) => Uint8Array;

const filters = new Map<string, RecordFilter>();

/** Registers `filter` under `name` in this thread (idempotent for the same function). */
export function registerRecordFilter(name: string, filter: RecordFilter): void {
  filters.set(name, filter);
}

/** The filter registered under `name`; throws when this thread has none. */
export function recordFilterOf(name: string): RecordFilter {
  const filter = filters.get(name);
  if (filter === undefined) throw new Error(`no compaction record filter named ${JSON.stringify(name)} in this thread`);
  return filter;
}
