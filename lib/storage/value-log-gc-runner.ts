/**
 * Value-log GC, the driver: picks a value-log file, measures its live share
 * (value-log-gc.ts), and collects it when that share is at most the configured ratio. Owned
 * by the engine's thread; it acts on the engine only through `ValueLogGcHost`.
 *
 * Which files to read: an estimate of each file's live bytes, kept without IO — the value bytes
 * its flush pointed at, less the pointers compactions dropped as shadowed (Titan's discardable
 * size). Only a file whose estimate is at most the ratio (or that has no estimate: after a
 * reopen, checked once) is read and measured exactly; the exact figure replaces the estimate.
 * The estimate only errs high (a shadowed pointer not yet compacted away still counts), so GC
 * may start late, never early on a live file — and liveness is exact anyway.
 *
 * One file at a time, paced: live values are rewritten in slices of limits.valueLogGcSliceBytes,
 * each slice one write batch that the engine's commit loop puts at the head of the next group
 * commit after re-checking each value's liveness there (engine.ts #commitLoop), then a pause
 * keeps the rewrite under `valueLogGcBytesPerSecond`. A file found mostly live is left alone
 * for limits.valueLogGcRecheckFlushes flushes. A file that fails to verify (KV_CORRUPTION) is
 * never collected; it stays listed, and its good values stay readable.
 *
 * The order that makes it crash-safe (value-log-gc.ts has the step-by-step argument): rewrite
 * slices durably → drop the file from the value log → install the manifest → unlink.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import type { PendingWrite, WriteOp } from './engine.js';
import { userKeyOf } from './internal-key.js';
import type { ValueLog } from './value-log.js';
import { type LiveValue, liveValuesOf, slicesOfLive } from './value-log-gc.js';

export interface ValueLogGcHost {
  settings(): { valueSeparationBytes: number; valueLogGcLiveRatio: number; valueLogGcBytesPerSecond: number };
  logger: Logger;
  valueLog(): ValueLog;
  readFile(path: string): Uint8Array;
  namesPointer(internal: Uint8Array, fileNumber: number, offset: number): boolean;
  encode(ops: readonly WriteOp[]): Omit<PendingWrite, 'resolve' | 'reject'>;
  scheduleCommit(): void;
  /** Open, not closing, not failed. */
  usable(): boolean;
  /** Throws if the engine may not install; makes rewrites durable when commits do not fsync. */
  beforeDrop(): void;
  installManifest(): void;
  removeFile(path: string): void;
  fail(error: unknown): void;
}

interface Rewrite {
  slice: LiveValue[];
  fileNumber: number;
  resolve(): void;
  reject(error: Error): void;
}

export class ValueLogGc {
  readonly stats = { gcChecks: 0, gcCollections: 0, gcBytesRewritten: 0, gcBytesFreed: 0 };
  readonly #host: ValueLogGcHost;
  #running: Promise<void> | undefined;
  #stopped = false;
  /** File → the flush count when it was last found mostly live (Infinity: never again). */
  readonly #checkedAt = new Map<number, number>();
  #rewrites: Rewrite[] = [];
  /** File → estimated live value bytes (see above). */
  readonly #liveBytes = new Map<number, number>();

  constructor(host: ValueLogGcHost) {
    this.#host = host;
  }

  /** A flush pointed `bytes` of values into `fileNumber`. */
  noteLive(fileNumber: number, bytes: number): void {
    this.#liveBytes.set(fileNumber, (this.#liveBytes.get(fileNumber) ?? 0) + bytes);
  }

  /** A compaction dropped pointers to `bytes` of values in `fileNumber`. */
  noteDead(fileNumber: number, bytes: number): void {
    const live = this.#liveBytes.get(fileNumber);
    if (live !== undefined) this.#liveBytes.set(fileNumber, Math.max(0, live - bytes));
  }

  /** Whether a file is worth reading: estimated mostly dead, or never measured, and not checked lately. */
  #due(n: number, flushes: number): boolean {
    if ((this.#checkedAt.get(n) ?? -Infinity) + limits.valueLogGcRecheckFlushes > flushes) return false;
    const live = this.#liveBytes.get(n);
    if (live === undefined) return !this.#checkedAt.has(n);
    return live <= this.#host.valueLog().sizeOf(n) * this.#host.settings().valueLogGcLiveRatio;
  }

  /** Starts a pass over the files that are due, unless one runs or GC is off. */
  maybeStart(flushes: number): void {
    if (this.#running || this.#stopped || this.#host.settings().valueLogGcBytesPerSecond === 0) return;
    // At most one never-measured file per pass: after a reopen, files are measured one by one.
    const files = this.#host.valueLog().list();
    const unmeasured = files.find((n) => !this.#liveBytes.has(n) && this.#due(n, flushes));
    const due = files.filter((n) => this.#liveBytes.has(n) && this.#due(n, flushes));
    if (unmeasured !== undefined) due.push(unmeasured);
    if (due.length === 0) return;
    this.#running = this.#pass(due, flushes).finally(() => {
      this.#running = undefined;
    });
  }

  /** Checks every file now (waiting for a running pass first); resolves with files collected. */
  async collectAll(): Promise<number> {
    while (this.#running) await this.#running;
    const before = this.stats.gcCollections;
    this.#running = this.#pass(this.#host.valueLog().list(), Infinity).finally(() => {
      this.#running = undefined;
    });
    await this.#running;
    return this.stats.gcCollections - before;
  }

  /** Stops starting work and waits for the running pass (its rewrites are refused once closing). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.rejectRewrites(new RingkvError(ErrorCode.closed, 'storage engine is closing', {}));
    while (this.#running) await this.#running.catch(() => undefined);
  }

  rewritesWaiting(): boolean {
    return this.#rewrites.length > 0;
  }

  /**
   * Called by the commit loop at the head of a group commit: the waiting rewrites, with every
   * value no longer live dropped, as pending writes ahead of `group`.
   */
  takeRewrites(group: PendingWrite[]): PendingWrite[] {
    if (this.#rewrites.length === 0) return group;
    const rewrites = this.#rewrites;
    this.#rewrites = [];
    const writes: PendingWrite[] = [];
    for (const r of rewrites) {
      const ops: WriteOp[] = [];
      for (const v of r.slice) {
        if (this.#host.namesPointer(v.key, r.fileNumber, v.offset)) ops.push({ type: 'put', key: userKeyOf(v.key), value: v.value });
      }
      if (ops.length === 0) {
        r.resolve();
        continue;
      }
      const encoded = this.#host.encode(ops);
      this.stats.gcBytesRewritten += encoded.bytes;
      // bytes 0: rewrites are not user bytes (write amplification counts them as rewritten).
      writes.push({ record: encoded.record, payload: encoded.payload, bytes: 0, resolve: r.resolve, reject: r.reject });
    }
    return writes.length === 0 ? group : [...writes, ...group];
  }

  rejectRewrites(error: Error): void {
    const rewrites = this.#rewrites;
    this.#rewrites = [];
    for (const r of rewrites) r.reject(error);
  }

  async #pass(files: number[], flushes: number): Promise<void> {
    for (const n of files) {
      if (this.#stopped || !this.#host.usable()) return;
      try {
        await this.#collect(n, flushes);
      } catch (error) {
        if (error instanceof RingkvError && error.code === ErrorCode.corruption) {
          this.#checkedAt.set(n, Infinity);
          this.#host.logger.error({ err: error, file: n }, 'value-log file failed to verify; it is kept and never collected');
        } else if (!(error instanceof RingkvError && error.code === ErrorCode.closed) && this.#host.usable()) {
          this.#host.fail(error);
        }
        return;
      }
    }
  }

  async #collect(fileNumber: number, flushes: number): Promise<void> {
    const host = this.#host;
    const settings = host.settings();
    const path = host.valueLog().pathOf(fileNumber);
    // Every value is a candidate, not only those over today's threshold: the file may hold
    // pointers made under another `valueSeparationBytes`. Liveness alone decides.
    const scan = liveValuesOf(host.readFile(path), path, 0, (key, offset) => host.namesPointer(key, fileNumber, offset));
    this.stats.gcChecks++;
    this.#liveBytes.set(fileNumber, scan.liveBytes);
    if (scan.liveBytes > scan.fileBytes * settings.valueLogGcLiveRatio) {
      this.#checkedAt.set(fileNumber, flushes);
      return;
    }
    const pauseMsPerByte = settings.valueLogGcBytesPerSecond > 0 ? 1000 / settings.valueLogGcBytesPerSecond : 0;
    for (const slice of slicesOfLive(scan.live, limits.valueLogGcSliceBytes)) {
      if (this.#stopped || !host.usable()) return;
      await new Promise<void>((resolve, reject) => {
        this.#rewrites.push({ slice, fileNumber, resolve, reject });
        host.scheduleCommit();
      });
      const sliceBytes = slice.reduce((sum, v) => sum + v.value.length, 0);
      await new Promise((resolve) => setTimeout(resolve, sliceBytes * pauseMsPerByte));
    }
    if (this.#stopped || !host.usable()) return;
    host.beforeDrop();
    host.valueLog().drop(fileNumber);
    host.installManifest();
    host.removeFile(path);
    this.#checkedAt.delete(fileNumber);
    this.#liveBytes.delete(fileNumber);
    this.stats.gcCollections++;
    this.stats.gcBytesFreed += scan.fileBytes;
    host.logger.info({ file: path, liveBytes: scan.liveBytes, fileBytes: scan.fileBytes }, 'value-log file collected');
  }
}
