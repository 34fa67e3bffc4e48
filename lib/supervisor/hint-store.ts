/**
 * The hint store: writes this node accepted as a stand-in for replicas that were down
 * (sloppy quorum), kept durably until their owner is back and has them on disk. Owned by the
 * supervisor (main thread). Follows Cassandra's hints: one directory of append-only segment
 * files per target node, delivered in order, deleted once delivered.
 *
 * Layout: `<dir>/<hex(target id)>/<seq, 16 hex digits>.hints`, each a commit log in the WAL
 * format (lib/storage/wal-format.ts: file header, CRC32C per record, torn tails dropped on
 * open), one record per hint:
 *
 *   ┌────────────┬────────────────────┬──────────────┬─────┬────────────────┬────────┐
 *   │ version u8 │ createdMs f64 (LE) │ keyLen u16LE │ key │ objectLen u32LE│ object │
 *   └────────────┴────────────────────┴──────────────┴─────┴────────────────┴────────┘
 *   version = 1 (frozen). `object` is the key's stored object (lib/causality encodeObject);
 *   the owner merges it with mergeReplicas, so redelivering a hint is harmless.
 *
 * Durability: `add` resolves only after the record is appended AND fdatasynced; all hints
 * added in one event-loop turn share one append and one fdatasync per target (group commit).
 * The sync blocks the main thread for one fdatasync per turn that has hints — hints exist only
 * while a replica is down, so this is the one place the supervisor touches the disk directly
 * (a deliberate deviation from "the supervisor never blocks"; the alternative, hints inside the
 * shards' engines, would mix them into the partitions' key space).
 *
 * Bounds (issue 5 §1): per target at most `bytesMax` of undelivered hints, and no new hints
 * once its oldest undelivered hint is older than `windowMs`. Past either, `add` rejects with
 * KV_OVERLOADED (the coordinator does not count that stand-in) and the key's partition is
 * recorded in `<dir>/<hex>/SKIPPED` (JSON list, written atomically), so anti-entropy can repair
 * those partitions; logged once per partition, counted.
 *
 * Delivery: `deliver` seals the current segment, then sends each segment's hints in batches
 * (the caller's `send` resolves true once the owner acknowledged every hint of the batch, i.e.
 * fsynced it) and deletes a segment only after all of its hints were acknowledged. A failed
 * batch stops delivery; it resumes from the start of that segment next time.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { joinPath, type FileSystem } from '../storage/file-system.js';
import { recoverWal, scanWal } from '../storage/wal-reader.js';
import { WalWriter } from '../storage/wal-writer.js';

/** Frozen. */
export const hintRecordVersion = 1;
const segmentSuffix = '.hints';
const skippedFile = 'SKIPPED';

export interface Hint {
  readonly key: Uint8Array;
  readonly object: Uint8Array;
  readonly createdMs: number;
}

export interface HintSummary {
  readonly target: string;
  readonly hints: number;
  readonly bytes: number;
  /** Age of the oldest undelivered hint. */
  readonly oldestAgeMs: number | undefined;
  /** Partitions with writes this node could not hint (anti-entropy must repair them). */
  readonly skippedPartitions: readonly number[];
}

export interface HintStoreOptions {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly bytesMax: number;
  readonly windowMs: number;
  readonly segmentBytes: number;
  readonly partitionOf: (key: Uint8Array) => number;
}

interface Segment {
  readonly seq: number;
  readonly path: string;
  hints: number;
  bytes: number;
  oldestMs: number | undefined;
}

interface TargetState {
  readonly target: string;
  readonly dir: string;
  readonly segments: Segment[];
  writer: WalWriter | undefined;
  skipped: Set<number>;
  pending: { payload: Uint8Array; resolve: () => void; reject: (error: Error) => void }[];
}

export function encodeHint(hint: Hint): Uint8Array {
  const out = new Uint8Array(1 + 8 + 2 + hint.key.length + 4 + hint.object.length);
  const view = new DataView(out.buffer);
  out[0] = hintRecordVersion;
  view.setFloat64(1, hint.createdMs, true);
  view.setUint16(9, hint.key.length, true);
  out.set(hint.key, 11);
  view.setUint32(11 + hint.key.length, hint.object.length, true);
  out.set(hint.object, 15 + hint.key.length);
  return out;
}

export function decodeHint(bytes: Uint8Array, file: string): Hint {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (): RingkvError => new RingkvError(ErrorCode.corruption, `malformed hint record in ${file}`, { file });
  if (bytes.length < 15 || bytes[0] !== hintRecordVersion) throw bad();
  const keyLength = view.getUint16(9, true);
  if (15 + keyLength > bytes.length) throw bad();
  const objectLength = view.getUint32(11 + keyLength, true);
  if (15 + keyLength + objectLength !== bytes.length) throw bad();
  return {
    createdMs: view.getFloat64(1, true),
    key: bytes.slice(11, 11 + keyLength),
    object: bytes.slice(15 + keyLength),
  };
}

const hexOf = (target: string): string => Buffer.from(target, 'utf8').toString('hex');
const targetOf = (hex: string): string => Buffer.from(hex, 'hex').toString('utf8');
const segmentName = (seq: number): string => seq.toString(16).padStart(16, '0') + segmentSuffix;

export class HintStore {
  readonly #options: HintStoreOptions;
  readonly #targets = new Map<string, TargetState>();
  #flushScheduled = false;
  #refused = 0;

  private constructor(options: HintStoreOptions) {
    this.#options = options;
  }

  /** Opens the store, recovering every target's segments (torn tails dropped). */
  static open(options: HintStoreOptions): HintStore {
    const store = new HintStore(options);
    options.fs.mkdirp(options.dir);
    for (const hex of options.fs.list(options.dir)) {
      if (!/^[0-9a-f]+$/.test(hex)) continue;
      store.#load(targetOf(hex), joinPath(options.dir, hex));
    }
    return store;
  }

  /** Hints refused because a target was past its bound. */
  get refused(): number {
    return this.#refused;
  }

  #load(target: string, dir: string): void {
    const { fs, logger } = this.#options;
    const state = this.#stateOf(target, dir);
    for (const name of fs.list(dir).filter((n) => n.endsWith(segmentSuffix)).sort()) {
      const path = joinPath(dir, name);
      const recovery = recoverWal(fs, path, logger);
      const segment: Segment = { seq: Number.parseInt(name, 16), path, hints: 0, bytes: 0, oldestMs: undefined };
      for (const payload of recovery.payloads) this.#count(segment, decodeHint(payload, path));
      if (segment.hints === 0) fs.remove(path);
      else state.segments.push(segment);
    }
    const skippedPath = joinPath(dir, skippedFile);
    if (fs.exists(skippedPath)) {
      const parsed: unknown = JSON.parse(Buffer.from(fs.readFile(skippedPath)).toString('utf8'));
      if (Array.isArray(parsed)) for (const p of parsed) if (Number.isInteger(p)) state.skipped.add(p as number);
    }
  }

  #stateOf(target: string, dir = joinPath(this.#options.dir, hexOf(target))): TargetState {
    let state = this.#targets.get(target);
    if (state === undefined) {
      state = { target, dir, segments: [], writer: undefined, skipped: new Set(), pending: [] };
      this.#targets.set(target, state);
    }
    return state;
  }

  #count(segment: Segment, hint: Hint): void {
    segment.hints++;
    segment.bytes += hint.key.length + hint.object.length;
    segment.oldestMs = Math.min(segment.oldestMs ?? hint.createdMs, hint.createdMs);
  }

  /** Durably stores a hint for `target`; rejects KV_OVERLOADED past the target's bound. */
  add(target: string, key: Uint8Array, object: Uint8Array): Promise<void> {
    const state = this.#stateOf(target);
    const nowMs = this.#options.clock.wallMs();
    const summary = this.#summaryOf(state, nowMs);
    const overBytes = summary.bytes + key.length + object.length > this.#options.bytesMax;
    const overAge = summary.oldestAgeMs !== undefined && summary.oldestAgeMs > this.#options.windowMs;
    if (overBytes || overAge) {
      this.#refused++;
      this.#skip(state, this.#options.partitionOf(key), overBytes ? 'bytes' : 'age');
      return Promise.reject(new RingkvError(ErrorCode.overloaded, `hints for ${target} are past their ${overBytes ? 'size' : 'age'} bound`, { target }));
    }
    const hint = { key, object, createdMs: nowMs };
    return new Promise<void>((resolve, reject) => {
      state.pending.push({ payload: encodeHint(hint), resolve, reject });
      this.#scheduleFlush();
    });
  }

  #skip(state: TargetState, partition: number, why: string): void {
    if (state.skipped.has(partition)) return;
    state.skipped.add(partition);
    this.#options.logger.warn({ target: state.target, partition, bound: why }, 'not hinting for a target past its bound; anti-entropy must repair the partition');
    this.#writeSkipped(state);
  }

  #writeSkipped(state: TargetState): void {
    const { fs } = this.#options;
    fs.mkdirp(state.dir);
    const temp = joinPath(state.dir, `${skippedFile}.tmp`);
    fs.remove(temp);
    const file = fs.createExclusive(temp);
    try {
      file.append(Buffer.from(JSON.stringify([...state.skipped].sort((a, b) => a - b))));
      file.sync();
    } finally {
      file.close();
    }
    fs.rename(temp, joinPath(state.dir, skippedFile));
    fs.syncDir(state.dir);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      for (const state of this.#targets.values()) if (state.pending.length > 0) this.#flush(state);
    });
  }

  /** One append and one fdatasync for every hint of `state` added since the last flush. */
  #flush(state: TargetState): void {
    const batch = state.pending.splice(0);
    try {
      const writer = this.#writerOf(state);
      writer.appendRecords(batch.map((p) => p.payload));
      writer.sync();
      const segment = state.segments.at(-1)!;
      for (const p of batch) this.#count(segment, decodeHint(p.payload, segment.path));
      for (const p of batch) p.resolve();
      if (writer.sizeBytes >= this.#options.segmentBytes) this.#seal(state);
    } catch (error) {
      this.#options.logger.error({ target: state.target, err: error }, 'hint write failed');
      this.#seal(state);
      const failure = new RingkvError(ErrorCode.io, `could not store hints for ${state.target}`, { target: state.target }, { cause: error });
      for (const p of batch) p.reject(failure);
    }
  }

  #writerOf(state: TargetState): WalWriter {
    if (state.writer !== undefined) return state.writer;
    const { fs } = this.#options;
    fs.mkdirp(state.dir);
    const seq = (state.segments.at(-1)?.seq ?? 0) + 1;
    const path = joinPath(state.dir, segmentName(seq));
    state.writer = WalWriter.create(fs, path);
    state.segments.push({ seq, path, hints: 0, bytes: 0, oldestMs: undefined });
    return state.writer;
  }

  #seal(state: TargetState): void {
    state.writer?.close();
    state.writer = undefined;
  }

  #summaryOf(state: TargetState, nowMs: number): HintSummary {
    let hints = 0;
    let bytes = 0;
    let oldestMs: number | undefined;
    for (const s of state.segments) {
      hints += s.hints;
      bytes += s.bytes;
      if (s.oldestMs !== undefined) oldestMs = Math.min(oldestMs ?? s.oldestMs, s.oldestMs);
    }
    return { target: state.target, hints, bytes, oldestAgeMs: oldestMs === undefined ? undefined : nowMs - oldestMs, skippedPartitions: [...state.skipped].sort((a, b) => a - b) };
  }

  summaries(): HintSummary[] {
    const nowMs = this.#options.clock.wallMs();
    return [...this.#targets.values()].map((s) => this.#summaryOf(s, nowMs)).filter((s) => s.hints > 0 || s.skippedPartitions.length > 0);
  }

  /** Targets that have undelivered hints. */
  targetsWithHints(): string[] {
    return [...this.#targets.values()].filter((s) => s.segments.some((g) => g.hints > 0)).map((s) => s.target);
  }

  /**
   * Delivers `target`'s hints in batches of `batchSize`; `send` resolves true when the owner
   * acknowledged (fsynced) every hint of the batch. Returns how many were delivered and
   * whether none remain.
   */
  async deliver(target: string, batchSize: number, send: (hints: Hint[]) => Promise<boolean>): Promise<{ delivered: number; complete: boolean }> {
    const state = this.#targets.get(target);
    if (state === undefined) return { delivered: 0, complete: true };
    this.#seal(state);
    let delivered = 0;
    const { fs } = this.#options;
    while (state.segments.length > 0 && state.writer === undefined) {
      const segment = state.segments[0]!;
      const hints = scanWal(fs.readFile(segment.path), segment.path).payloads.map((p) => decodeHint(p, segment.path));
      for (let i = 0; i < hints.length; i += batchSize) {
        if (!(await send(hints.slice(i, i + batchSize)))) return { delivered, complete: false };
      }
      delivered += hints.length;
      fs.remove(segment.path);
      fs.syncDir(state.dir);
      state.segments.shift();
    }
    return { delivered, complete: state.segments.length === 0 };
  }

  /** The partitions skipped for `target`, cleared (anti-entropy took them over). */
  takeSkipped(target: string): number[] {
    const state = this.#targets.get(target);
    if (state === undefined || state.skipped.size === 0) return [];
    const out = [...state.skipped].sort((a, b) => a - b);
    state.skipped.clear();
    this.#writeSkipped(state);
    return out;
  }

  close(): void {
    for (const state of this.#targets.values()) {
      this.#seal(state);
      for (const p of state.pending.splice(0)) p.reject(new RingkvError(ErrorCode.closed, 'the hint store closed', {}));
    }
  }
}
