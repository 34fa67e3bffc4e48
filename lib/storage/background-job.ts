/**
 * Flush and compaction jobs: the CPU-heavy half of the LSM, written as plain functions of a
 * `FileSystem` and a job description so that they run either inline (tests, the in-memory
 * file system) or in a piscina worker (compaction-pool.ts) off the shard thread.
 *
 * A job only creates new table files and fsyncs them; it never touches the manifest or
 * deletes anything. The engine installs the result (directory fsync, then a new manifest,
 * then deletion of inputs), so a crash at any step of a job leaves only orphans that the
 * next open deletes. Jobs are plain data (structured-clone safe) in both directions.
 */

import { assert } from '../base/assert.js';
import { type FileSystem, joinPath } from './file-system.js';
import { tableFileName, walFileName } from './manifest.js';
import { Memtable } from './memtable.js';
import { scanWal } from './wal-reader.js';
import { ArrayCursor, ConcatenatingCursor, type EntryCursor, MergingCursor } from './merging-cursor.js';
import { TableBuilder } from './table-builder.js';
import { TableReader } from './table-reader.js';
import { EntryKind } from './write-batch.js';
import { decodeValuePointer, encodeValuePointer } from './value-pointer.js';

export interface TableOptions {
  blockBytes: number;
  bloomBitsPerKey: number;
  compression: 'none' | 'lz4';
}

export interface JobTable {
  fileNumber: number;
  largest: Uint8Array;
}

export type BackgroundJob =
  | {
      kind: 'flush';
      dir: string;
      fileNumber: number;
      /**
       * The commit logs whose records make up the frozen memtable, oldest first. The job
       * rebuilds the memtable from them off the shard thread: the shard neither sorts nor
       * copies anything to start a flush, which keeps its latency flat.
       */
      walFileNumbers: number[];
      table: TableOptions;
      /** Values of at least this many bytes become pointers into their commit log (Infinity: none). */
      valueSeparationBytes: number;
    }
  | {
      kind: 'compact';
      dir: string;
      /** Source groups, newest first; each a key-ordered run of non-overlapping tables. */
      sources: JobTable[][];
      dropTombstones: boolean;
      /** Output file numbers are taken from [fileNumberStart, fileNumberLimit). */
      fileNumberStart: number;
      fileNumberLimit: number;
      targetTableBytes: number;
      table: TableOptions;
    };

export interface JobOutput {
  fileNumber: number;
  fileBytes: number;
  entryCount: number;
  smallest: Uint8Array;
  largest: Uint8Array;
}

export interface JobResult {
  outputs: JobOutput[];
  bytesRead: number;
  bytesWritten: number;
  entriesDropped: number;
  /** Flush only: the commit logs that the new tables point into (they become value-log files). */
  valueLogFiles?: number[];
  /** [file, bytes]: flush, value bytes the new pointers name per file; compaction, bytes of pointers it dropped. */
  valueLogBytes?: [number, number][];
}

export function runBackgroundJob(fs: FileSystem, job: BackgroundJob): JobResult {
  return job.kind === 'flush' ? runFlush(fs, job) : runCompaction(fs, job);
}

/**
 * Rebuilds the frozen memtable from its commit logs and writes it as one level-0 table. Values
 * of at least `valueSeparationBytes` are written as pointers to where they lie in their commit
 * log (value-pointer.ts): each memtable value is a view into the bytes read from its log, so
 * its offset in the file is its offset in those bytes.
 */
function runFlush(fs: FileSystem, job: Extract<BackgroundJob, { kind: 'flush' }>): JobResult {
  const memtable = new Memtable();
  const logs: { fileNumber: number; bytes: Uint8Array }[] = [];
  for (const n of job.walFileNumbers) {
    const path = joinPath(job.dir, walFileName(n));
    const bytes = fs.readFile(path);
    logs.push({ fileNumber: n, bytes });
    for (const payload of scanWal(bytes, path).payloads) {
      memtable.addBatch(payload);
    }
  }
  const entries = memtable.sortedEntries();
  assert(entries.length > 0, 'flush of an empty memtable');
  const writer = new OutputWriter(fs, job.dir, job.table, job.fileNumber, job.fileNumber + 1, Infinity);
  const referenced = new Map<number, number>();
  const cursor = new ArrayCursor(entries);
  for (cursor.seekToFirst(); cursor.valid; cursor.next()) {
    const value = cursor.value;
    if (cursor.kind !== EntryKind.value || value.length < job.valueSeparationBytes) {
      writer.add(cursor.key, cursor.kind, value);
      continue;
    }
    const log = logs.find((l) => l.bytes.buffer === value.buffer && value.byteOffset >= l.bytes.byteOffset && value.byteOffset < l.bytes.byteOffset + l.bytes.length);
    assert(log !== undefined, 'a memtable value outside the commit logs it was read from');
    referenced.set(log.fileNumber, (referenced.get(log.fileNumber) ?? 0) + value.length);
    writer.add(cursor.key, EntryKind.pointer, encodeValuePointer(log.fileNumber, value.byteOffset - log.bytes.byteOffset, value));
  }
  const outputs = writer.finish();
  const valueLogFiles = [...referenced.keys()].sort((a, b) => a - b);
  return { outputs, bytesRead: 0, bytesWritten: sumBytes(outputs), entriesDropped: 0, valueLogFiles, valueLogBytes: [...referenced] };
}

function runCompaction(fs: FileSystem, job: Extract<BackgroundJob, { kind: 'compact' }>): JobResult {
  const readers: TableReader[] = [];
  const openTable = (t: JobTable): TableReader => {
    const reader = TableReader.open(fs, joinPath(job.dir, tableFileName(t.fileNumber)), t.fileNumber, undefined);
    readers.push(reader);
    return reader;
  };
  try {
    const sources: EntryCursor[] = job.sources.map(
      (group) => new ConcatenatingCursor(group.map((t) => t.largest), (i) => openTable(group[i]!).iterator()),
    );
    const writer = new OutputWriter(fs, job.dir, job.table, job.fileNumberStart, job.fileNumberLimit, job.targetTableBytes);
    // Pointers an older version held, now gone: their values are dead (value-log GC's estimate).
    const deadBytes = new Map<number, number>();
    const merged = new MergingCursor(sources, (kind, value) => {
      if (kind !== EntryKind.pointer) return;
      const p = decodeValuePointer(value);
      deadBytes.set(p.fileNumber, (deadBytes.get(p.fileNumber) ?? 0) + p.length);
    });
    let dropped = 0;
    for (merged.seekToFirst(); merged.valid; merged.next()) {
      if (job.dropTombstones && merged.kind === EntryKind.tombstone) {
        dropped++;
        continue;
      }
      writer.add(merged.key, merged.kind, merged.value);
    }
    const outputs = writer.finish();
    const bytesRead = readers.reduce((sum, r) => sum + r.fileBytes, 0);
    return { outputs, bytesRead, bytesWritten: sumBytes(outputs), entriesDropped: dropped, valueLogBytes: [...deadBytes] };
  } finally {
    for (const r of readers) r.close();
  }
}

function sumBytes(outputs: JobOutput[]): number {
  return outputs.reduce((sum, o) => sum + o.fileBytes, 0);
}

/** Writes a sorted stream into tables of about `targetBytes`, numbered from a reserved range. */
class OutputWriter {
  #outputs: JobOutput[] = [];
  #builder: TableBuilder | undefined;
  #fileNumber: number;
  #smallest: Uint8Array | undefined;
  #largest: Uint8Array | undefined;
  #count = 0;

  constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly options: TableOptions,
    fileNumberStart: number,
    private readonly fileNumberLimit: number,
    private readonly targetBytes: number,
  ) {
    this.#fileNumber = fileNumberStart;
  }

  add(key: Uint8Array, kind: EntryKind, value: Uint8Array): void {
    if (this.#builder && this.#builder.estimatedSizeBytes >= this.targetBytes && this.#fileNumber + 1 < this.fileNumberLimit) {
      this.#finishTable();
    }
    if (!this.#builder) {
      this.#builder = new TableBuilder(this.fs, joinPath(this.dir, tableFileName(this.#fileNumber)), this.options);
      this.#smallest = key.slice();
      this.#count = 0;
    }
    this.#builder.add(key, kind, value);
    // A reference, copied once per table: cursor keys are never modified after they are returned.
    this.#largest = key;
    this.#count++;
  }

  finish(): JobOutput[] {
    if (this.#builder) this.#finishTable();
    return this.#outputs;
  }

  #finishTable(): void {
    const builder = this.#builder!;
    const largest = this.#largest!.slice();
    const properties = builder.finish();
    this.#outputs.push({
      fileNumber: this.#fileNumber,
      fileBytes: properties.fileBytes,
      entryCount: this.#count,
      smallest: this.#smallest!,
      largest,
    });
    this.#builder = undefined;
    this.#fileNumber++;
  }
}
