/**
 * The storage engine of one shard: a log-structured merge tree over byte keys, as in
 * LevelDB (doc/impl.md) and Cassandra. Owned by exactly one thread (the shard's).
 *
 * Write path: `write()` validates and encodes its ops once, as the commit-log payload (one
 * copy per batch, not per value; write-batch.ts), and queues it; a commit step takes every
 * queued batch, appends them
 * to the commit log in one write, fsyncs once (group commit), applies them to the memtable and
 * only then resolves their promises. Nothing is acknowledged before its sync (sync 'fsync',
 * the default). Sync 'none' skips the fsync: documented as losing the last writes on power
 * loss, for benchmarks only.
 *
 * When the memtable reaches its budget it is frozen, a new commit log is started, and a flush
 * job turns the frozen memtable into a level-0 SSTable (background-job.ts, inline or on the
 * piscina pool). The engine installs results itself: directory fsync, new manifest
 * (manifest.ts), and only then deletes commit logs and input tables. Leveled compaction
 * (compaction-picker.ts) keeps read and space amplification bounded.
 *
 * Backpressure, never unbounded memory: writes are delayed when level 0 reaches its slowdown
 * trigger, and stopped (with the reason recorded in stats) while a frozen memtable is still
 * flushing or level 0 is at its stop trigger; a stall longer than writeStallTimeoutMs fails
 * the waiting writes with KV_OVERLOADED, and more than pendingWritesMax queued writes are
 * refused the same way.
 *
 * Errors: an fsync failure is fatal (RELIABILITY.md §0.7): the writes waiting on it fail with
 * KV_IO marked indeterminate, and every later write fails until the engine is reopened, which
 * recovers from the log. ENOSPC fails the batch with KV_DISK_FULL and moves to a fresh log so
 * writes resume once space is freed. Reads keep working in both cases.
 *
 * Keys are user keys; the engine orders them by (token, key) (internal-key.ts) so a partition
 * is a contiguous range for scans and drops. Reads are synchronous: a shard owns its thread.
 */

import { Buffer } from 'node:buffer';
import { assert } from '../base/assert.js';
import { type Clock, systemClock } from '../base/clock.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { type Logger, silentLogger } from '../base/log.js';
import type { BackgroundJob, JobResult, TableOptions } from './background-job.js';
import { BlockCache } from './block-cache.js';
import { type CompactionConfig, type CompactionPlan, pickCompaction, planFullCompaction } from './compaction-picker.js';
import { type FileSystem, joinPath } from './file-system.js';
import { InlineRunner } from './inline-runner.js';
import { CommitMetrics, pendingCompactionBytes, type HistogramSnapshot } from './engine-metrics.js';
import { tokenOf } from '../base/hash.js';
import { bloomHash } from './bloom-filter.js';
import { compareBytes, internalKeyOf, internalKeyOfToken, partitionRange, tokenOfInternal, userKeyOf } from './internal-key.js';
import { DirectoryLock } from './lock-file.js';
import {
  installManifest,
  loadManifest,
  MANIFEST_TEMP_NAME,
  type ManifestState,
  parseFileName,
  type TableMeta,
  tableFileName,
  walFileName,
} from './manifest.js';
import { Memtable } from './memtable.js';
import { ArrayCursor, ConcatenatingCursor, type EntryCursor, MergingCursor } from './merging-cursor.js';
import { TableReader } from './table-reader.js';
import { recoverWal } from './wal-reader.js';
import { WalWriter } from './wal-writer.js';
import { walRecordHeaderBytes } from './wal-format.js';
import { ValueLog } from './value-log.js';
import { ValueLogGc, type ValueLogGcHost } from './value-log-gc-runner.js';
import { pointerNames } from './value-pointer.js';
import { BATCH_HEADER_BYTES, batchEntryBytes, EntryKind, writeBatchHeader, writeUserKeyEntry } from './write-batch.js';

export type SyncMode = 'fsync' | 'none';

/** Runs flush and compaction jobs: inline, or on a piscina pool (compaction-pool.ts). */
export interface BackgroundRunner {
  run(job: BackgroundJob): Promise<JobResult>;
}

export interface EngineOptions {
  fs: FileSystem;
  dir: string;
  sync?: SyncMode;
  memtableBytes?: number;
  blockBytes?: number;
  bloomBitsPerKey?: number;
  compression?: 'none' | 'lz4';
  blockCacheBytes?: number;
  partitionBits?: number;
  targetTableBytes?: number;
  level0CompactionTrigger?: number;
  level0SlowdownTrigger?: number;
  level0StopTrigger?: number;
  level1BytesMax?: number;
  keyBytesMax?: number;
  valueBytesMax?: number;
  /**
   * Values of at least this many bytes live in the value log and tables hold pointers to them
   * (value-pointer.ts); default limits.valueSeparationBytesDefault, Infinity turns it off.
   */
  valueSeparationBytes?: number;
  /** Value-log GC collects a file once at most this share of it is live (default 0.5). */
  valueLogGcLiveRatio?: number;
  /** Value-log GC pace (default limits.valueLogGcBytesPerSecondDefault); 0 turns GC off. */
  valueLogGcBytesPerSecond?: number;
  /** Start compactions on their own when a level is over its bound (default true). */
  autoCompact?: boolean;
  runner?: BackgroundRunner;
  logger?: Logger;
  clock?: Clock;
  /** A compaction record filter registered under this name (record-filter.ts), run with clock.wallMs(). */
  recordFilter?: string;
  /** Take over a lock held by another thread of this process that the caller knows is dead. */
  reclaimFromDeadThread?: boolean;
}

export type WriteOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'delete'; key: Uint8Array };

export interface ScanOptions {
  /** Resume after this user key (from a previous page's `nextAfterKey`). */
  afterKey?: Uint8Array;
  limit?: number;
}

export interface ScanPage {
  entries: { key: Uint8Array; value: Uint8Array }[];
  /** Set when more entries may follow: pass it as `afterKey`. */
  nextAfterKey: Uint8Array | undefined;
}

export interface EngineStats {
  levels: { tables: number; bytes: number }[];
  memtableBytes: number;
  flushPending: boolean;
  walBytes: number;
  liveTableBytes: number;
  bloom: { checks: number; negatives: number; falsePositives: number };
  cache: { hits: number; misses: number; hitRate: number; bytes: number };
  writeStalls: { slowdowns: number; stops: number; stallMs: number; lastReason: string | undefined };
  flushes: number;
  compactions: number;
  userBytesWritten: number;
  compactionBytesRead: number;
  compactionBytesWritten: number;
  flushBytesWritten: number;
  /** (flush + compaction bytes written) / user bytes written. */
  writeAmplification: number;
  failed: string | undefined;
  /** Bytes compaction must rewrite before the tree is in shape (engine-metrics.ts). */
  pendingCompactionBytes: number;
  /** Group commit: writes per commit-log append, and the seconds each fsync took. */
  commits: { batchWrites: HistogramSnapshot; fsyncSeconds: HistogramSnapshot };
  /**
   * Memory against its budgets: memtables (at most two of memtableBudgetBytes, plus the groups
   * in flight), the block cache, and what every open table keeps resident (bloom filters and
   * indexes, which grow with the data: about 10 bits and one index entry per 4 KiB block per key).
   */
  memory: {
    memtableBytes: number;
    memtableBudgetBytes: number;
    blockCacheBytes: number;
    blockCacheBudgetBytes: number;
    filterBytes: number;
    indexBytes: number;
  };
  /** Key-value separation: value-log files, their bytes, pointer reads and GC work. */
  valueLog: {
    files: number;
    bytes: number;
    reads: number;
    gcChecks: number;
    gcCollections: number;
    gcBytesRewritten: number;
    gcBytesFreed: number;
  };
}

export interface PendingWrite {
  /** The commit-log record: [header room][payload], framed in place at commit (no copy). */
  record: Uint8Array;
  /** The encoded write batch: the record's payload (a view of it), and what the memtable keeps. */
  payload: Uint8Array;
  /** User key and value bytes, for stats. */
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface Settings {
  sync: SyncMode;
  memtableBytes: number;
  table: TableOptions;
  targetTableBytes: number;
  compaction: CompactionConfig;
  level0SlowdownTrigger: number;
  level0StopTrigger: number;
  partitionBits: number;
  keyBytesMax: number;
  valueBytesMax: number;
  autoCompact: boolean;
  valueSeparationBytes: number;
  valueLogGcLiveRatio: number;
  valueLogGcBytesPerSecond: number;
}

function settingsOf(o: EngineOptions): Settings {
  const memtableBytes = o.memtableBytes ?? limits.memtableBytesDefault;
  if (!(memtableBytes >= limits.memtableBytesMin && memtableBytes <= limits.memtableBytesMax)) {
    throw new RangeError(`memtableBytes must be within [${limits.memtableBytesMin}, ${limits.memtableBytesMax}]`);
  }
  const partitionBits = o.partitionBits ?? limits.partitionBitsDefault;
  if (!Number.isInteger(partitionBits) || partitionBits < 0 || partitionBits > limits.partitionBitsMax) {
    throw new RangeError(`partitionBits must be an integer within [0, ${limits.partitionBitsMax}]`);
  }
  const sync = o.sync ?? 'fsync';
  if (sync !== 'fsync' && sync !== 'none') throw new TypeError("sync must be 'fsync' or 'none'");
  return {
    sync,
    memtableBytes,
    table: {
      blockBytes: o.blockBytes ?? limits.blockBytesDefault,
      bloomBitsPerKey: o.bloomBitsPerKey ?? limits.bloomBitsPerKeyDefault,
      compression: o.compression ?? 'lz4',
    },
    targetTableBytes: o.targetTableBytes ?? limits.tableBytesTarget,
    compaction: {
      level0CompactionTrigger: o.level0CompactionTrigger ?? limits.level0CompactionTrigger,
      level1BytesMax: o.level1BytesMax ?? limits.level1BytesMax,
      levelSizeMultiplier: limits.levelSizeMultiplier,
      levelCount: limits.levelCount,
    },
    level0SlowdownTrigger: o.level0SlowdownTrigger ?? limits.level0SlowdownTrigger,
    level0StopTrigger: o.level0StopTrigger ?? limits.level0StopTrigger,
    partitionBits,
    keyBytesMax: Math.min(o.keyBytesMax ?? limits.keyBytesMax, limits.keyBytesCeiling),
    valueBytesMax: Math.min(o.valueBytesMax ?? limits.valueBytesMax, limits.entryBytesMax - limits.keyBytesCeiling),
    autoCompact: o.autoCompact ?? true,
    ...valueLogSettingsOf(o),
  };
}

function valueLogSettingsOf(o: EngineOptions): Pick<Settings, 'valueSeparationBytes' | 'valueLogGcLiveRatio' | 'valueLogGcBytesPerSecond'> {
  const valueSeparationBytes = o.valueSeparationBytes ?? limits.valueSeparationBytesDefault;
  if (!(valueSeparationBytes >= 1)) throw new RangeError('valueSeparationBytes must be at least 1 (Infinity: off)');
  const valueLogGcLiveRatio = o.valueLogGcLiveRatio ?? limits.valueLogGcLiveRatioDefault;
  if (!(valueLogGcLiveRatio > 0 && valueLogGcLiveRatio < 1)) throw new RangeError('valueLogGcLiveRatio must be within (0, 1)');
  const valueLogGcBytesPerSecond = o.valueLogGcBytesPerSecond ?? limits.valueLogGcBytesPerSecondDefault;
  if (!(valueLogGcBytesPerSecond >= 0)) throw new RangeError('valueLogGcBytesPerSecond must be >= 0');
  return { valueSeparationBytes, valueLogGcLiveRatio, valueLogGcBytesPerSecond };
}

export class Engine {
  readonly dir: string;
  readonly #fs: FileSystem;
  readonly #settings: Settings;
  readonly #runner: BackgroundRunner;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #recordFilter: string | undefined;
  readonly #lock: DirectoryLock;
  readonly #cache: BlockCache;
  readonly #readers = new Map<number, TableReader>();
  #levels: TableMeta[][];
  #compactPointers: (Uint8Array | undefined)[];
  #nextFileNumber: number;
  #logNumber: number;
  #mem = new Memtable();
  #keyListener: ((token: number) => void) | undefined;
  #imm: Memtable | undefined;
  #wal: WalWriter;
  #walNumber: number;
  /** Commit logs whose records are in the memtables, oldest first (all >= logNumber). */
  #liveWals: number[] = [];
  #pending: PendingWrite[] = [];
  /** Groups appended and syncing, oldest first; each settles once applied (or failed), never rejects. */
  #syncing: Promise<void>[] = [];
  #commitScheduled = false;
  #committing = false;
  #flushing: Promise<void> | undefined;
  #compacting: Promise<void> | undefined;
  #waiters: (() => void)[] = [];
  #valueLog: ValueLog;
  readonly #valueLogGc: ValueLogGc;
  #failure: RingkvError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #commitMetrics = new CommitMetrics();
  #stats = {
    slowdowns: 0,
    stops: 0,
    stallMs: 0,
    lastStallReason: undefined as string | undefined,
    flushes: 0,
    compactions: 0,
    userBytesWritten: 0,
    compactionBytesRead: 0,
    compactionBytesWritten: 0,
    flushBytesWritten: 0,
  };

  private constructor(options: EngineOptions, settings: Settings, lock: DirectoryLock) {
    this.dir = options.dir;
    this.#fs = options.fs;
    this.#settings = settings;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#recordFilter = options.recordFilter;
    this.#runner = options.runner ?? new InlineRunner(options.fs);
    this.#lock = lock;
    this.#cache = new BlockCache(options.blockCacheBytes ?? limits.blockCacheBytesDefault);
    this.#levels = Array.from({ length: settings.compaction.levelCount }, () => []);
    this.#compactPointers = Array.from({ length: settings.compaction.levelCount }, () => undefined);
    this.#nextFileNumber = 1;
    this.#logNumber = 0;
    this.#walNumber = 0;
    this.#wal = undefined as unknown as WalWriter;
    this.#valueLog = new ValueLog(options.fs, options.dir, []);
    this.#valueLogGc = new ValueLogGc(this.#valueLogGcHost());
  }

  /** Opens (creating if needed) and recovers the engine in `dir`. */
  static open(options: EngineOptions): Engine {
    const settings = settingsOf(options);
    const logger = options.logger ?? silentLogger;
    options.fs.mkdirp(options.dir);
    const lock = DirectoryLock.acquire(options.fs, options.dir, {
      logger,
      reclaimFromDeadThread: options.reclaimFromDeadThread ?? false,
    });
    const engine = new Engine(options, settings, lock);
    try {
      engine.#recover();
    } catch (error) {
      engine.#closeFiles();
      lock.release();
      throw error;
    }
    return engine;
  }

  // ---------------------------------------------------------------- recovery

  #recover(): void {
    const fs = this.#fs;
    let state = loadManifest(fs, this.dir);
    if (!state) {
      this.#removeAll((name) => parseFileName(name) !== undefined);
      state = {
        nextFileNumber: 2,
        logNumber: 1,
        partitionBits: this.#settings.partitionBits,
        levelCount: this.#settings.compaction.levelCount,
        tables: [],
      };
      installManifest(fs, this.dir, state);
    }
    if (state.partitionBits !== this.#settings.partitionBits || state.levelCount !== this.#settings.compaction.levelCount) {
      throw new RingkvError(
        ErrorCode.incompatible,
        `${this.dir} was created with partitionBits ${state.partitionBits}, opened with ${this.#settings.partitionBits}`,
        { dir: this.dir },
      );
    }
    this.#loadTables(state);
    const wals = this.#cleanOrphans(state);
    this.#replay(wals);
    this.#liveWals = [...wals];
    this.#walNumber = this.#nextFileNumber++;
    this.#liveWals.push(this.#walNumber);
    this.#wal = WalWriter.create(fs, this.#walPath(this.#walNumber));
    this.#wal.sync();
    fs.syncDir(this.dir);
  }

  #loadTables(state: ManifestState): void {
    this.#valueLog = new ValueLog(this.#fs, this.dir, state.valueLogFiles ?? []);
    this.#logNumber = state.logNumber;
    this.#nextFileNumber = state.nextFileNumber;
    for (const t of state.tables) {
      this.#levels[t.level]!.push(t);
      this.#openReader(t);
      this.#nextFileNumber = Math.max(this.#nextFileNumber, t.fileNumber + 1);
    }
    this.#sortLevels();
  }

  /** Deletes files no durable manifest mentions; returns the live commit logs, oldest first. */
  #cleanOrphans(state: ManifestState): number[] {
    const live = new Set(state.tables.map((t) => t.fileNumber));
    const wals: number[] = [];
    for (const name of this.#fs.list(this.dir)) {
      const parsed = parseFileName(name);
      if (name === MANIFEST_TEMP_NAME) this.#fs.remove(joinPath(this.dir, name));
      if (!parsed) continue;
      this.#nextFileNumber = Math.max(this.#nextFileNumber, parsed.fileNumber + 1);
      const orphan =
        parsed.kind === 'table' ? !live.has(parsed.fileNumber) : parsed.fileNumber < state.logNumber && !this.#valueLog.has(parsed.fileNumber);
      if (orphan) {
        this.#logger.info({ file: name }, 'removing orphan file');
        this.#fs.remove(joinPath(this.dir, name));
      } else if (parsed.kind === 'wal' && parsed.fileNumber >= state.logNumber) {
        wals.push(parsed.fileNumber);
      }
    }
    return wals.sort((a, b) => a - b);
  }

  #replay(wals: number[]): void {
    for (const number of wals) {
      const path = this.#walPath(number);
      const recovery = recoverWal(this.#fs, path, this.#logger);
      for (const payload of recovery.payloads) {
        this.#mem.addBatch(payload);
      }
      this.#logger.info({ file: path, records: recovery.payloads.length }, 'replayed commit log');
    }
  }

  #removeAll(match: (name: string) => boolean): void {
    for (const name of this.#fs.list(this.dir)) if (match(name)) this.#fs.remove(joinPath(this.dir, name));
  }

  // ---------------------------------------------------------------- writes

  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.write([{ type: 'put', key, value }]);
  }

  delete(key: Uint8Array): Promise<void> {
    return this.write([{ type: 'delete', key }]);
  }

  /** Applies `ops` atomically; resolves once they are durable (sync 'fsync'). */
  write(ops: readonly WriteOp[]): Promise<void> {
    let pending: Omit<PendingWrite, 'resolve' | 'reject'>;
    try {
      this.#checkWritable();
      pending = this.#encode(ops);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#pending.length >= limits.pendingWritesMax) {
      return Promise.reject(new RingkvError(ErrorCode.overloaded, 'too many writes waiting for the commit log', {}));
    }
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ record: pending.record, payload: pending.payload, bytes: pending.bytes, resolve, reject });
      this.#scheduleCommit();
    });
  }

  /**
   * Validates `ops` and encodes them as one write batch. The payload is a copy (the caller may
   * reuse its buffers once write() returns) made once per batch, not per value: the memtable
   * keeps offsets into it, and the commit log writes it as it is.
   */
  #encode(ops: readonly WriteOp[]): Omit<PendingWrite, 'resolve' | 'reject'> {
    if (!Array.isArray(ops)) throw new TypeError('ops must be an array');
    if (ops.length > limits.batchOpsMax) {
      throw new RingkvError(ErrorCode.tooLarge, `batch of ${ops.length} ops is over ${limits.batchOpsMax}`, {});
    }
    let bytes = 0;
    let payloadBytes = BATCH_HEADER_BYTES;
    for (const op of ops) {
      const value = this.#checkOp(op);
      bytes += op.key.length + value.length;
      payloadBytes += batchEntryBytes(op.key.length + 4, value.length);
    }
    if (bytes > limits.batchBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `batch of ${bytes} bytes is over ${limits.batchBytesMax}`, {});
    }
    // Not zero-filled: every byte is written below (header by frameWalRecord at commit).
    const pooled = Buffer.allocUnsafe(walRecordHeaderBytes + payloadBytes);
    const record = new Uint8Array(pooled.buffer, pooled.byteOffset, pooled.length);
    const payload = record.subarray(walRecordHeaderBytes);
    writeBatchHeader(payload, ops.length);
    let pos = BATCH_HEADER_BYTES;
    for (const op of ops) {
      const kind = op.type === 'put' ? EntryKind.value : EntryKind.tombstone;
      pos = writeUserKeyEntry(payload, pos, kind, tokenOf(op.key), op.key, op.type === 'put' ? op.value : EMPTY);
    }
    assert(pos === payloadBytes, 'write batch size mismatch');
    return { record, payload, bytes };
  }

  /** Checks one op; returns its value (empty for a delete). */
  #checkOp(op: WriteOp): Uint8Array {
    if (!(op.key instanceof Uint8Array)) throw new TypeError('key must be a Uint8Array');
    if (op.key.length > this.#settings.keyBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `key of ${op.key.length} bytes is over ${this.#settings.keyBytesMax}`, {});
    }
    const isPut = op.type === 'put';
    if (!isPut && op.type !== 'delete') throw new TypeError("op.type must be 'put' or 'delete'");
    const value = isPut ? op.value : EMPTY;
    if (!(value instanceof Uint8Array)) throw new TypeError('value must be a Uint8Array');
    if (value.length > this.#settings.valueBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `value of ${value.length} bytes is over ${this.#settings.valueBytesMax}`, {});
    }
    return value;
  }

  #scheduleCommit(): void {
    if (this.#commitScheduled || this.#committing) return;
    this.#commitScheduled = true;
    setImmediate(() => {
      this.#commitScheduled = false;
      void this.#commitLoop();
    });
  }

  async #commitLoop(): Promise<void> {
    if (this.#committing) return;
    this.#committing = true;
    try {
      while (this.#pending.length > 0 || this.#valueLogGc.rewritesWaiting()) {
        try {
          await this.#makeRoomForWrite();
        } catch (error) {
          this.#rejectPending(error as Error);
          this.#valueLogGc.rejectRewrites(error as Error);
          break;
        }
        if (this.#syncing.length >= COMMIT_PIPELINE_DEPTH) {
          await this.#syncing[0];
          continue;
        }
        const group = this.#pending.splice(0, this.#pending.length);
        // GC rewrites go first, checked for liveness now — only with no group in flight, so
        // every earlier write is applied and every later one follows them: a user's newer
        // value always wins.
        const writes = this.#syncing.length === 0 ? this.#valueLogGc.takeRewrites(group) : group;
        if (writes.length === 0) {
          await this.#syncing[0];
          continue;
        }
        this.#commitGroup(writes);
      }
    } finally {
      this.#committing = false;
      this.#wake();
    }
  }

  /**
   * One group commit: one append, one fdatasync, then apply and acknowledge. Where the file
   * system syncs asynchronously (a libuv thread), the sync runs while the next group is
   * encoded and appended (COMMIT_PIPELINE_DEPTH groups at most); groups are applied to the
   * memtable and acknowledged strictly in log order, each only after its own sync, and a group
   * behind a failed sync fails too (the engine stops on a failed sync anyway).
   */
  #commitGroup(group: PendingWrite[]): void {
    // Small groups sync inline: a libuv round trip costs more than it overlaps (one write at a
    // time waits for it). Behind a group still syncing, a group always chains asynchronously.
    let groupBytes = 0;
    for (const w of group) groupBytes += w.record.length;
    const syncAsync = this.#wal.canSyncAsync && (this.#syncing.length > 0 || groupBytes >= ASYNC_SYNC_BYTES_MIN);
    try {
      this.#checkWritable();
      this.#wal.appendFramed(group.map((w) => w.record));
      this.#commitMetrics.batchWrites.observe(group.length);
      if (this.#settings.sync === 'fsync' && !syncAsync) {
        const started = this.#clock.monotonicMs();
        this.#wal.sync();
        this.#commitMetrics.fsyncSeconds.observe((this.#clock.monotonicMs() - started) / 1000);
      }
    } catch (error) {
      const failure = this.#writeFailure(error);
      for (const w of group) w.reject(failure);
      return;
    }
    if (this.#settings.sync === 'none' || !syncAsync) {
      this.#apply(group);
      return;
    }
    const previous = this.#syncing[this.#syncing.length - 1];
    const syncStarted = this.#clock.monotonicMs();
    const synced = this.#wal.syncAsync().then(
      () => void this.#commitMetrics.fsyncSeconds.observe((this.#clock.monotonicMs() - syncStarted) / 1000),
      (error: unknown) => error ?? new Error('fdatasync failed'),
    );
    const done = (async (): Promise<void> => {
      const error = await synced;
      if (previous !== undefined) await previous;
      if (error === undefined && this.#failure === undefined) {
        this.#apply(group);
      } else {
        const failure = this.#writeFailure(error ?? this.#failure);
        for (const w of group) w.reject(failure);
      }
      this.#syncing.shift();
      this.#wake();
    })();
    this.#syncing.push(done);
  }

  #apply(group: PendingWrite[]): void {
    for (const w of group) {
      this.#mem.addBatch(w.payload);
      this.#stats.userBytesWritten += w.bytes;
      w.resolve();
    }
  }

  /**
   * Maps a commit-log failure to the error the waiting writes get. KV_DISK_FULL passes through:
   * the log cut the partial append off and stays usable, so writes resume once space is freed.
   * Anything else stops the engine: the writes are indeterminate and reopening recovers.
   */
  #writeFailure(error: unknown): RingkvError {
    if (error instanceof RingkvError && error.code !== ErrorCode.io) return error;
    this.#fail(error);
    return new RingkvError(
      ErrorCode.io,
      'commit log write or sync failed: the write may or may not be durable',
      { indeterminate: true },
      { cause: error },
    );
  }

  #rejectPending(error: Error): void {
    const pending = this.#pending.splice(0, this.#pending.length);
    for (const w of pending) w.reject(error);
  }

  async #makeRoomForWrite(): Promise<void> {
    const deadline = this.#clock.monotonicMs() + limits.writeStallTimeoutMs;
    let slowed = false;
    for (;;) {
      this.#checkWritable();
      const level0 = this.#levels[0]!.length;
      if (!slowed && level0 >= this.#settings.level0SlowdownTrigger) {
        slowed = true;
        this.#stats.slowdowns++;
        await this.#stall('level-0 slowdown', sleep(limits.writeSlowdownMs), deadline);
      } else if (this.#mem.approximateBytes < this.#settings.memtableBytes) {
        return;
      } else if (this.#imm !== undefined) {
        this.#stats.stops++;
        await this.#stall('memtable flush pending', this.#nextWake(), deadline);
      } else if (level0 >= this.#settings.level0StopTrigger) {
        this.#stats.stops++;
        this.#maybeCompact();
        await this.#stall('level-0 stop', this.#nextWake(), deadline);
      } else if (this.#syncing.length > 0) {
        // The log is about to change: its groups in flight finish first.
        await this.#syncing[this.#syncing.length - 1];
      } else {
        this.#freezeMemtable();
      }
    }
  }

  async #stall(reason: string, until: Promise<void>, deadlineMs: number): Promise<void> {
    this.#stats.lastStallReason = reason;
    const started = this.#clock.monotonicMs();
    const remaining = deadlineMs - started;
    if (remaining <= 0) {
      throw new RingkvError(ErrorCode.overloaded, `writes stalled too long: ${reason}`, { reason });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, remaining);
    });
    await Promise.race([until, timeout]);
    clearTimeout(timer);
    this.#stats.stallMs += this.#clock.monotonicMs() - started;
  }

  /** Resolves at the next state change (a flush or compaction installed, a failure, a close). */
  #nextWake(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  // ---------------------------------------------------------------- flush

  /** Freezes the memtable, starts a new commit log, and starts the flush job. */
  #freezeMemtable(): void {
    assert(this.#imm === undefined, 'freeze with a flush pending');
    const number = this.#nextFileNumber++;
    const wal = WalWriter.create(this.#fs, this.#walPath(number));
    wal.sync();
    this.#fs.syncDir(this.dir);
    this.#wal.close();
    this.#wal = wal;
    this.#walNumber = number;
    const frozenWals = this.#liveWals.filter((n) => n < number);
    this.#liveWals.push(number);
    this.#imm = this.#mem;
    this.#mem = new Memtable();
    this.#mem.onAdd = this.#keyListener;
    this.#flushing = this.#runFlush(frozenWals, number).finally(() => {
      this.#flushing = undefined;
      this.#wake();
    });
  }

  async #runFlush(walFileNumbers: number[], logNumber: number): Promise<void> {
    const fileNumber = this.#nextFileNumber++;
    try {
      const result = await this.#runner.run({
        kind: 'flush',
        dir: this.dir,
        fileNumber,
        walFileNumbers,
        table: this.#settings.table,
        valueSeparationBytes: this.#settings.valueSeparationBytes,
      });
      this.#checkOpenForInstall();
      this.#fs.syncDir(this.dir);
      for (const o of result.outputs) this.#addTable({ level: 0, ...o });
      for (const n of result.valueLogFiles ?? []) this.#valueLog.add(n);
      for (const [n, bytes] of result.valueLogBytes ?? []) this.#valueLogGc.noteLive(n, bytes);
      this.#logNumber = logNumber;
      this.#liveWals = this.#liveWals.filter((n) => n >= logNumber);
      this.#installManifest();
      this.#imm = undefined;
      this.#removeObsoleteLogs();
      this.#stats.flushes++;
      this.#stats.flushBytesWritten += result.bytesWritten;
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.#maybeCompact();
    this.#valueLogGc.maybeStart(this.#stats.flushes);
  }

  #removeObsoleteLogs(): void {
    for (const name of this.#fs.list(this.dir)) {
      const parsed = parseFileName(name);
      if (parsed?.kind === 'wal' && parsed.fileNumber < this.#logNumber && !this.#valueLog.has(parsed.fileNumber)) {
        this.#fs.remove(joinPath(this.dir, name));
      }
    }
  }

  /** Writes the memtable to a table and waits for it (and for any flush already running). */
  async flush(): Promise<void> {
    this.#checkWritable();
    await this.#idleCommits();
    while (this.#flushing) await this.#flushing;
    this.#checkWritable();
    if (this.#mem.size > 0) {
      this.#freezeMemtable();
      await this.#flushing;
    }
    this.#rethrowFailure();
  }

  async #idleCommits(): Promise<void> {
    while (this.#committing || this.#commitScheduled || this.#pending.length > 0 || this.#syncing.length > 0) await this.#nextWakeOrTick();
  }

  #nextWakeOrTick(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      setImmediate(resolve);
    });
  }

  // ---------------------------------------------------------------- compaction

  #maybeCompact(): void {
    if (!this.#settings.autoCompact || this.#compacting || this.#closed || this.#failure) return;
    const plan = pickCompaction(this.#levels, this.#compactPointers, this.#settings.compaction);
    if (!plan) return;
    this.#compacting = this.#runCompaction(plan)
      .catch((error: unknown) => this.#fail(error))
      .finally(() => {
        this.#compacting = undefined;
        this.#wake();
        this.#maybeCompact();
      });
  }

  /** Flushes, then merges every table into one sorted run at the deepest used level. */
  async compact(): Promise<void> {
    await this.flush();
    while (this.#compacting) await this.#compacting;
    this.#checkWritable();
    const plan = planFullCompaction(this.#levels);
    if (!plan) return;
    const run = this.#runCompaction(plan);
    this.#compacting = run.catch((error: unknown) => this.#fail(error)).finally(() => {
      this.#compacting = undefined;
      this.#wake();
    });
    await run;
  }

  async #runCompaction(plan: CompactionPlan): Promise<void> {
    const upperLevel = plan.inputs[0]!.level;
    if (plan.trivialMove) {
      const table = plan.inputs[0]!;
      this.#removeTableMeta(table);
      this.#levels[plan.outputLevel]!.push({ ...table, level: plan.outputLevel });
      this.#sortLevels();
      this.#compactPointers[upperLevel] = table.largest;
      this.#installManifest();
      return;
    }
    const inputBytes = plan.inputs.reduce((sum, t) => sum + t.fileBytes, 0);
    const reserve = Math.ceil(inputBytes / this.#settings.targetTableBytes) * 2 + 4;
    const fileNumberStart = this.#nextFileNumber;
    this.#nextFileNumber += reserve;
    const result = await this.#runner.run({
      kind: 'compact',
      dir: this.dir,
      sources: plan.sources.map((group) => group.map((t) => ({ fileNumber: t.fileNumber, largest: t.largest }))),
      dropTombstones: plan.dropTombstones,
      fileNumberStart,
      fileNumberLimit: fileNumberStart + reserve,
      targetTableBytes: this.#settings.targetTableBytes,
      table: this.#settings.table,
      ...(this.#recordFilter === undefined ? {} : { filter: { name: this.#recordFilter, nowMs: this.#clock.wallMs() } }),
    });
    this.#installCompaction(plan, result, upperLevel);
  }

  #installCompaction(plan: CompactionPlan, result: JobResult, upperLevel: number): void {
    this.#checkOpenForInstall();
    this.#fs.syncDir(this.dir);
    for (const t of plan.inputs) this.#removeTableMeta(t);
    for (const o of result.outputs) this.#addTable({ level: plan.outputLevel, ...o });
    this.#compactPointers[upperLevel] = plan.inputs.find((t) => t.level === upperLevel)?.largest;
    this.#installManifest();
    for (const t of plan.inputs) this.#dropTableFile(t.fileNumber);
    for (const [n, bytes] of result.valueLogBytes ?? []) this.#valueLogGc.noteDead(n, bytes);
    this.#stats.compactions++;
    this.#stats.compactionBytesRead += result.bytesRead;
    this.#stats.compactionBytesWritten += result.bytesWritten;
  }

  // ---------------------------------------------------------------- tables and manifest

  #addTable(t: TableMeta): void {
    this.#openReader(t);
    this.#levels[t.level]!.push(t);
    this.#sortLevels();
  }

  #openReader(t: TableMeta): void {
    const path = joinPath(this.dir, tableFileName(t.fileNumber));
    this.#readers.set(t.fileNumber, TableReader.open(this.#fs, path, t.fileNumber, this.#cache));
  }

  #removeTableMeta(t: TableMeta): void {
    const level = this.#levels[t.level]!;
    const index = level.findIndex((x) => x.fileNumber === t.fileNumber);
    assert(index >= 0, `table ${t.fileNumber} not in level ${t.level}`);
    level.splice(index, 1);
  }

  #dropTableFile(fileNumber: number): void {
    this.#readers.get(fileNumber)?.close();
    this.#readers.delete(fileNumber);
    this.#cache.evictFile(fileNumber);
    this.#fs.remove(joinPath(this.dir, tableFileName(fileNumber)));
  }

  /** Level 0 newest first (by file number); deeper levels by smallest key. */
  #sortLevels(): void {
    this.#levels[0]!.sort((a, b) => b.fileNumber - a.fileNumber);
    for (let level = 1; level < this.#levels.length; level++) {
      this.#levels[level]!.sort((a, b) => compareBytes(a.smallest, b.smallest));
    }
  }

  #installManifest(): void {
    installManifest(this.#fs, this.dir, {
      nextFileNumber: this.#nextFileNumber,
      logNumber: this.#logNumber,
      partitionBits: this.#settings.partitionBits,
      levelCount: this.#settings.compaction.levelCount,
      tables: this.#levels.flat(),
      valueLogFiles: this.#valueLog.list(),
    });
  }

  // ---------------------------------------------------------------- reads

  /**
   * The value stored under `key`, or undefined. Throws KV_CORRUPTION on a bad block.
   *
   * Ownership: the result is a read-only view of engine-owned bytes (a memtable batch or a
   * cached block), not a copy. The engine never modifies stored bytes, so the view stays valid
   * however long it is held; the caller must not modify it (copy first), and holding it keeps
   * its whole batch or block (a few KiB) alive. Every caller decodes or copies it anyway, so a
   * copy here was one allocation per get for nothing.
   *
   * Cost: one murmur3 of the key (the token) and one Map probe per memtable; only if both miss,
   * the internal key and ONE bloom hash, shared by every table probed.
   */
  get(key: Uint8Array): Uint8Array | undefined {
    this.#checkOpen();
    if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Uint8Array');
    const token = tokenOf(key);
    let inMemory = this.#mem.getByToken(token, key);
    if (inMemory === undefined && this.#imm !== undefined) inMemory = this.#imm.getByToken(token, key);
    if (inMemory !== undefined) return inMemory ?? undefined;
    const internal = internalKeyOfToken(token, key);
    let hash = -1; // the bloom hash, computed once if a table is probed (bloomHash is unsigned)
    for (const t of this.#levels[0]!) {
      if (compareBytes(internal, t.smallest) < 0 || compareBytes(internal, t.largest) > 0) continue;
      if (hash < 0) hash = bloomHash(internal);
      const reader = this.#readers.get(t.fileNumber)!;
      const found = reader.getValue(internal, hash);
      if (found !== undefined) return found === null ? undefined : reader.lastKind === EntryKind.pointer ? this.#valueLog.read(found) : found;
    }
    for (let level = 1; level < this.#levels.length; level++) {
      const t = findTable(this.#levels[level]!, internal);
      if (!t) continue;
      if (hash < 0) hash = bloomHash(internal);
      const reader = this.#readers.get(t.fileNumber)!;
      const found = reader.getValue(internal, hash);
      if (found !== undefined) return found === null ? undefined : reader.lastKind === EntryKind.pointer ? this.#valueLog.read(found) : found;
    }
    return undefined;
  }

  /**
   * Whether the newest entry of `internal` is a pointer to `offset` of value-log file
   * `fileNumber` (value-log GC's liveness test). Any memtable entry is newer than every table.
   */
  #namesPointer(internal: Uint8Array, fileNumber: number, offset: number): boolean {
    const token = ((internal[0]! << 24) | (internal[1]! << 16) | (internal[2]! << 8) | internal[3]!) >>> 0;
    const userKey = userKeyOf(internal);
    if (this.#mem.getByToken(token, userKey) !== undefined) return false;
    if (this.#imm !== undefined && this.#imm.getByToken(token, userKey) !== undefined) return false;
    const hash = bloomHash(internal);
    const probe = (t: TableMeta): boolean | undefined => {
      const reader = this.#readers.get(t.fileNumber)!;
      const found = reader.getValue(internal, hash);
      if (found === undefined) return undefined;
      return found !== null && reader.lastKind === EntryKind.pointer && pointerNames(found, fileNumber, offset);
    };
    for (const t of this.#levels[0]!) {
      if (compareBytes(internal, t.smallest) < 0 || compareBytes(internal, t.largest) > 0) continue;
      const answer = probe(t);
      if (answer !== undefined) return answer;
    }
    for (let level = 1; level < this.#levels.length; level++) {
      const t = findTable(this.#levels[level]!, internal);
      const answer = t === undefined ? undefined : probe(t);
      if (answer !== undefined) return answer;
    }
    return false;
  }

  /** What value-log GC (value-log-gc-runner.ts) may do to this engine. */
  #valueLogGcHost(): ValueLogGcHost {
    return {
      settings: () => this.#settings,
      logger: this.#logger,
      valueLog: () => this.#valueLog,
      readFile: (path) => this.#fs.readFile(path),
      namesPointer: (internal, fileNumber, offset) => this.#namesPointer(internal, fileNumber, offset),
      encode: (ops) => this.#encode(ops),
      scheduleCommit: () => this.#scheduleCommit(),
      usable: () => !this.#closed && this.#closing === undefined && this.#failure === undefined,
      beforeDrop: () => {
        this.#checkOpenForInstall();
        // Without per-commit fsync, make the rewrites durable before the file goes.
        if (this.#settings.sync === 'none') this.#wal.sync();
      },
      installManifest: () => this.#installManifest(),
      removeFile: (path) => this.#fs.remove(path),
      fail: (error) => this.#fail(error),
    };
  }

  /**
   * Told the token of every key the engine takes into a memtable from now on, before the
   * write that brings it is acknowledged (the shard's presence filter).
   */
  set keyListener(listener: ((token: number) => void) | undefined) {
    this.#keyListener = listener;
    this.#mem.onAdd = listener;
  }

  /** About how many keys the engine holds (its tables' entries and its memtables'); an upper bound. */
  keyEstimate(): number {
    let keys = this.#mem.size + (this.#imm?.size ?? 0);
    for (const level of this.#levels) for (const table of level) keys += table.entryCount;
    return keys;
  }

  /** Visits the token of every key of a partition that has a record (not a tombstone), in one pass. */
  forEachToken(partition: number, visit: (token: number) => void): void {
    this.#checkOpen();
    const range = partitionRange(partition, this.#settings.partitionBits);
    const cursor = this.#rangeCursor(range.start, range.end);
    for (cursor.seek(range.start); cursor.valid; cursor.next()) {
      if (range.end && compareBytes(cursor.key, range.end) >= 0) return;
      if (cursor.kind !== EntryKind.tombstone) visit(tokenOfInternal(cursor.key));
    }
  }

  /** One page of a partition's live entries, in (token, key) order. */
  scanPartition(partition: number, options: ScanOptions = {}): ScanPage {
    this.#checkOpen();
    const bits = this.#settings.partitionBits;
    if (!Number.isInteger(partition) || partition < 0 || partition >= 2 ** bits) {
      throw new RangeError(`partition must be an integer within [0, ${2 ** bits})`);
    }
    const limit = Math.min(options.limit ?? limits.scanEntriesMax, limits.scanEntriesMax);
    if (!(limit > 0)) throw new RangeError('limit must be positive');
    const range = partitionRange(partition, bits);
    const cursor = this.#rangeCursor(range.start, range.end);
    const after = options.afterKey ? internalKeyOf(options.afterKey) : undefined;
    cursor.seek(after ?? range.start);
    if (after && cursor.valid && compareBytes(cursor.key, after) === 0) cursor.next();
    const entries: ScanPage['entries'] = [];
    for (; cursor.valid; cursor.next()) {
      if (range.end && compareBytes(cursor.key, range.end) >= 0) return { entries, nextAfterKey: undefined };
      const kind = cursor.kind;
      if (kind === EntryKind.tombstone) continue;
      if (entries.length === limit) return { entries, nextAfterKey: entries[entries.length - 1]!.key };
      const value = kind === EntryKind.pointer ? this.#valueLog.read(cursor.value) : cursor.value.slice();
      entries.push({ key: userKeyOf(cursor.key).slice(), value });
    }
    return { entries, nextAfterKey: undefined };
  }

  #rangeCursor(start: Uint8Array, end: Uint8Array | undefined): EntryCursor {
    const sources: EntryCursor[] = [new ArrayCursor(this.#mem.range(start, end))];
    if (this.#imm) sources.push(new ArrayCursor(this.#imm.range(start, end)));
    const last = end ?? new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff]);
    const overlapping = (t: TableMeta): boolean => compareBytes(t.largest, start) >= 0 && compareBytes(t.smallest, last) < 0;
    for (const t of this.#levels[0]!) if (overlapping(t)) sources.push(this.#readers.get(t.fileNumber)!.iterator());
    for (let level = 1; level < this.#levels.length; level++) {
      const tables = this.#levels[level]!.filter(overlapping);
      if (tables.length === 0) continue;
      sources.push(
        new ConcatenatingCursor(
          tables.map((t) => t.largest),
          (i) => this.#readers.get(tables[i]!.fileNumber)!.iterator(),
        ),
      );
    }
    return new MergingCursor(sources);
  }

  /** Deletes every key of a partition (tombstones, in batches); returns how many. */
  async dropPartition(partition: number): Promise<number> {
    let dropped = 0;
    let afterKey: Uint8Array | undefined;
    do {
      const page = this.scanPartition(partition, afterKey ? { afterKey, limit: 1000 } : { limit: 1000 });
      if (page.entries.length > 0) {
        await this.write(page.entries.map((e) => ({ type: 'delete' as const, key: e.key })));
        dropped += page.entries.length;
      }
      afterKey = page.nextAfterKey;
    } while (afterKey);
    return dropped;
  }

  // ---------------------------------------------------------------- lifecycle and stats

  stats(): EngineStats {
    const bloom = { checks: 0, negatives: 0, falsePositives: 0 };
    for (const r of this.#readers.values()) {
      const s = r.stats;
      bloom.checks += s.bloomChecks;
      bloom.negatives += s.bloomNegatives;
      bloom.falsePositives += s.bloomFalsePositives;
    }
    const levels = this.#levels.map((ts) => ({ tables: ts.length, bytes: ts.reduce((sum, t) => sum + t.fileBytes, 0) }));
    let filterBytes = 0;
    let indexBytes = 0;
    for (const r of this.#readers.values()) {
      const resident = r.residentBytes;
      filterBytes += resident.filterBytes;
      indexBytes += resident.indexBytes;
    }
    const s = this.#stats;
    const cache = this.#cache.stats;
    return {
      levels,
      memtableBytes: this.#mem.approximateBytes + (this.#imm?.approximateBytes ?? 0),
      flushPending: this.#imm !== undefined,
      walBytes: this.#wal.sizeBytes,
      liveTableBytes: levels.reduce((sum, l) => sum + l.bytes, 0),
      bloom,
      cache: { hits: cache.hits, misses: cache.misses, hitRate: cache.hits / Math.max(1, cache.hits + cache.misses), bytes: cache.usedBytes },
      writeStalls: { slowdowns: s.slowdowns, stops: s.stops, stallMs: s.stallMs, lastReason: s.lastStallReason },
      flushes: s.flushes,
      compactions: s.compactions,
      userBytesWritten: s.userBytesWritten,
      compactionBytesRead: s.compactionBytesRead,
      compactionBytesWritten: s.compactionBytesWritten,
      flushBytesWritten: s.flushBytesWritten,
      writeAmplification: (s.flushBytesWritten + s.compactionBytesWritten) / Math.max(1, s.userBytesWritten),
      failed: this.#failure?.message,
      pendingCompactionBytes: pendingCompactionBytes(this.#levels, this.#settings.compaction),
      commits: { batchWrites: this.#commitMetrics.batchWrites.snapshot(), fsyncSeconds: this.#commitMetrics.fsyncSeconds.snapshot() },
      memory: {
        memtableBytes: this.#mem.approximateBytes + (this.#imm?.approximateBytes ?? 0),
        memtableBudgetBytes: 2 * this.#settings.memtableBytes,
        blockCacheBytes: cache.usedBytes,
        blockCacheBudgetBytes: this.#cache.capacityBytes,
        filterBytes,
        indexBytes,
      },
      valueLog: {
        files: this.#valueLog.list().length,
        bytes: this.#valueLog.sizeBytes(),
        reads: this.#valueLog.reads,
        ...this.#valueLogGc.stats,
      },
    };
  }

  /**
   * Runs value-log GC now over every value-log file (not only those due): collects each whose
   * live share is at most the configured ratio. Resolves with the number of files collected.
   */
  async collectValueLog(): Promise<number> {
    this.#checkWritable();
    return this.#valueLogGc.collectAll();
  }

  /** Waits for queued writes and background work, then closes files and releases the lock. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#valueLogGc.stop();
    await this.#idleCommits();
    while (this.#flushing || this.#compacting) await Promise.allSettled([this.#flushing, this.#compacting]);
    this.#closed = true;
    this.#wake();
    this.#closeFiles();
    this.#lock.release();
  }

  #closeFiles(): void {
    for (const r of this.#readers.values()) r.close();
    this.#readers.clear();
    this.#valueLog.close();
    this.#wal?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #fail(error: unknown): void {
    if (this.#failure) return;
    const message = error instanceof Error ? error.message : String(error);
    this.#failure = new RingkvError(ErrorCode.io, `storage engine stopped after an IO failure: ${message}`, { dir: this.dir }, { cause: error });
    this.#logger.error({ err: error, dir: this.dir }, 'storage engine stopped after an IO failure; reopen to recover from the log');
    this.#wake();
  }

  #rethrowFailure(): void {
    if (this.#failure) throw this.#failure;
  }

  #checkOpen(): void {
    if (this.#closed || this.#closing) throw new RingkvError(ErrorCode.closed, 'storage engine is closed', { dir: this.dir });
  }

  #checkWritable(): void {
    this.#checkOpen();
    this.#rethrowFailure();
  }

  #checkOpenForInstall(): void {
    this.#rethrowFailure();
  }

  #walPath(number: number): string {
    return joinPath(this.dir, walFileName(number));
  }
}

function findTable(tables: readonly TableMeta[], key: Uint8Array): TableMeta | undefined {
  let lo = 0;
  let hi = tables.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(tables[mid]!.largest, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  const t = tables[lo];
  return t && compareBytes(t.smallest, key) <= 0 ? t : undefined;
}

const EMPTY = new Uint8Array(0);
/** Group commits in flight at once: one syncing while the next is appended. */
const COMMIT_PIPELINE_DEPTH = 2;
/** Groups of at least this many bytes sync on a libuv thread, overlapping the next group. */
const ASYNC_SYNC_BYTES_MIN = 64 * 1024;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
