/**
 * The per-shard storage engine series of /metrics (see metric-catalog.ts for the catalog's
 * shape and naming rules): one sample per shard (label `shard`), read at scrape time from
 * the engine statistics the supervisor refreshes every couple of seconds (shard-stats.ts).
 * Bloom "useful" is RocksDB's bloom_filter_useful (the filter answered "absent", a table read
 * avoided); "useless" is a filter "maybe" for a key the table did not hold (a false positive).
 */

import type { HistogramSample, Labels, MetricSources, MetricSpec, Sample } from './metric-catalog.js';

/** One shard's figures: its engine's and its header cache's (telemetry.ts). */
type EngineStats = MetricSources['telemetry']['engines'][number];

function perShard(read: (engine: EngineStats) => number): (sources: MetricSources) => Sample[] {
  return ({ telemetry }) => telemetry.engines.map((engine, shard) => ({ labels: { shard: String(shard) }, value: read(engine) }));
}

function perShardLevel(read: (level: { tables: number; bytes: number }) => number): (sources: MetricSources) => Sample[] {
  return ({ telemetry }) => telemetry.engines.flatMap((engine, shard) => engine.levels.map((level, index) => ({ labels: { shard: String(shard), level: String(index) }, value: read(level) })));
}

function perShardHistogram(read: (engine: EngineStats) => HistogramSample['histogram'] | undefined): (sources: MetricSources) => HistogramSample[] {
  const out = (labels: Labels, histogram: HistogramSample['histogram']): HistogramSample => ({ labels, histogram });
  return ({ telemetry }) =>
    telemetry.engines.flatMap((engine, shard) => {
      const histogram = read(engine);
      return histogram === undefined ? [] : [out({ shard: String(shard) }, histogram)];
    });
}

export const engineMetrics: MetricSpec[] = [
  { name: 'ringkv_shard_header_cache_bytes', type: 'gauge', help: 'Bytes held by the version-header cache of each shard', labels: ['shard'], read: perShard((s) => s.headerCache.bytes) },
  {
    name: 'ringkv_shard_header_cache_lookups_total',
    type: 'counter',
    help: 'Version-header cache lookups of client writes and merges, by result (fallback: the headers could not decide, the object was read)',
    labels: ['shard', 'result'],
    read: ({ telemetry }) =>
      telemetry.engines.flatMap((s, shard) => [
        { labels: { shard: String(shard), result: 'hit' }, value: s.headerCache.hits },
        { labels: { shard: String(shard), result: 'miss' }, value: s.headerCache.misses },
        { labels: { shard: String(shard), result: 'fallback' }, value: s.headerCache.fallbacks },
      ]),
  },
  { name: 'ringkv_engine_memtable_bytes', type: 'gauge', help: 'Bytes in the memtables (active and flushing)', labels: ['shard'], read: perShard((e) => e.memtableBytes) },
  { name: 'ringkv_engine_wal_bytes', type: 'gauge', help: 'Bytes in the live commit log', labels: ['shard'], read: perShard((e) => e.walBytes) },
  { name: 'ringkv_engine_level_tables', type: 'gauge', help: 'SSTables per LSM level', labels: ['shard', 'level'], read: perShardLevel((l) => l.tables) },
  { name: 'ringkv_engine_level_bytes', type: 'gauge', help: 'SSTable bytes per LSM level', labels: ['shard', 'level'], read: perShardLevel((l) => l.bytes) },
  { name: 'ringkv_engine_pending_compaction_bytes', type: 'gauge', help: 'Bytes compaction must rewrite before the LSM tree is in shape', labels: ['shard'], read: perShard((e) => e.pendingCompactionBytes ?? 0) },
  {
    name: 'ringkv_engine_write_stalls_total',
    type: 'counter',
    help: 'Writes slowed down or stopped by level-0 or memtable pressure, by kind',
    labels: ['shard', 'kind'],
    read: ({ telemetry }) =>
      telemetry.engines.flatMap((e, shard) => [
        { labels: { shard: String(shard), kind: 'slowdown' }, value: e.writeStalls.slowdowns },
        { labels: { shard: String(shard), kind: 'stop' }, value: e.writeStalls.stops },
      ]),
  },
  { name: 'ringkv_engine_write_stall_seconds_total', type: 'counter', help: 'Time writes spent stalled', labels: ['shard'], read: perShard((e) => e.writeStalls.stallMs / 1000) },
  { name: 'ringkv_engine_commit_batch_writes', type: 'histogram', help: 'Writes per group commit (one commit-log append and fsync)', labels: ['shard'], readHistograms: perShardHistogram((e) => e.commits?.batchWrites) },
  { name: 'ringkv_engine_wal_fsync_seconds', type: 'histogram', help: 'Commit-log fsync latency', labels: ['shard'], readHistograms: perShardHistogram((e) => e.commits?.fsyncSeconds) },
  { name: 'ringkv_engine_bloom_useful_total', type: 'counter', help: 'Bloom filter checks that ruled a table out (a read avoided)', labels: ['shard'], read: perShard((e) => e.bloom.negatives) },
  { name: 'ringkv_engine_bloom_useless_total', type: 'counter', help: 'Bloom filter false positives (the table was read for nothing)', labels: ['shard'], read: perShard((e) => e.bloom.falsePositives) },
  { name: 'ringkv_engine_block_cache_hits_total', type: 'counter', help: 'Block cache hits', labels: ['shard'], read: perShard((e) => e.cache.hits) },
  { name: 'ringkv_engine_block_cache_misses_total', type: 'counter', help: 'Block cache misses', labels: ['shard'], read: perShard((e) => e.cache.misses) },
  { name: 'ringkv_engine_block_cache_bytes', type: 'gauge', help: 'Bytes held by the block cache', labels: ['shard'], read: perShard((e) => e.cache.bytes) },
  { name: 'ringkv_engine_flushes_total', type: 'counter', help: 'Memtable flushes', labels: ['shard'], read: perShard((e) => e.flushes) },
  { name: 'ringkv_engine_compactions_total', type: 'counter', help: 'Compactions', labels: ['shard'], read: perShard((e) => e.compactions) },
  {
    name: 'ringkv_engine_compaction_bytes_total',
    type: 'counter',
    help: 'Bytes read and written by compactions',
    labels: ['shard', 'direction'],
    read: ({ telemetry }) =>
      telemetry.engines.flatMap((e, shard) => [
        { labels: { shard: String(shard), direction: 'read' }, value: e.compactionBytesRead },
        { labels: { shard: String(shard), direction: 'written' }, value: e.compactionBytesWritten },
      ]),
  },
  {
    name: 'ringkv_engine_memory_bytes',
    type: 'gauge',
    help: 'Memory held by the engine, by kind: memtables, block cache, resident bloom filters and table indexes',
    labels: ['shard', 'kind'],
    read: ({ telemetry }) =>
      telemetry.engines.flatMap((e, shard) =>
        e.memory === undefined
          ? []
          : Object.entries({ memtable: e.memory.memtableBytes, block_cache: e.memory.blockCacheBytes, filters: e.memory.filterBytes, indexes: e.memory.indexBytes }).map(([kind, value]) => ({ labels: { shard: String(shard), kind }, value })),
      ),
  },
  {
    name: 'ringkv_engine_memory_budget_bytes',
    type: 'gauge',
    help: 'Memory budgets of the engine, by kind: memtables (two of memtableBytes) and block cache',
    labels: ['shard', 'kind'],
    read: ({ telemetry }) =>
      telemetry.engines.flatMap((e, shard) =>
        e.memory === undefined
          ? []
          : [
              { labels: { shard: String(shard), kind: 'memtable' }, value: e.memory.memtableBudgetBytes },
              { labels: { shard: String(shard), kind: 'block_cache' }, value: e.memory.blockCacheBudgetBytes },
            ],
      ),
  },
  { name: 'ringkv_engine_value_log_files', type: 'gauge', help: 'Value-log files (values of 1 KiB and more live there; tables hold pointers)', labels: ['shard'], read: perShard((e) => e.valueLog?.files ?? 0) },
  { name: 'ringkv_engine_value_log_bytes', type: 'gauge', help: 'Bytes in value-log files', labels: ['shard'], read: perShard((e) => e.valueLog?.bytes ?? 0) },
  { name: 'ringkv_engine_value_log_reads_total', type: 'counter', help: 'Values read through a value-log pointer', labels: ['shard'], read: perShard((e) => e.valueLog?.reads ?? 0) },
  { name: 'ringkv_engine_value_log_gc_checks_total', type: 'counter', help: 'Value-log files checked by GC for their live ratio', labels: ['shard'], read: perShard((e) => e.valueLog?.gcChecks ?? 0) },
  { name: 'ringkv_engine_value_log_gc_collections_total', type: 'counter', help: 'Value-log files collected by GC', labels: ['shard'], read: perShard((e) => e.valueLog?.gcCollections ?? 0) },
  { name: 'ringkv_engine_value_log_gc_rewritten_bytes_total', type: 'counter', help: 'Live value bytes GC rewrote to collect a file', labels: ['shard'], read: perShard((e) => e.valueLog?.gcBytesRewritten ?? 0) },
  { name: 'ringkv_engine_value_log_gc_freed_bytes_total', type: 'counter', help: 'Bytes freed by value-log GC', labels: ['shard'], read: perShard((e) => e.valueLog?.gcBytesFreed ?? 0) },
  { name: 'ringkv_engine_user_written_bytes_total', type: 'counter', help: 'Key and value bytes written by users (the write-amplification denominator)', labels: ['shard'], read: perShard((e) => e.userBytesWritten) },
];
