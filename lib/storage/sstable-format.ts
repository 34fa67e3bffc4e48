/**
 * The SSTable file format (after LevelDB's doc/table_format.md), shared by table-builder.ts
 * and table-reader.ts. Everything here is frozen: it reaches the disk. Changing any layout or
 * constant below bumps SSTABLE_FORMAT_VERSION.
 *
 * A table holds unique keys in strictly increasing bytewise order, each with a kind
 * (0 value, 1 tombstone, 2 value pointer) and a value (empty for tombstones; for a pointer,
 * the 17 bytes of value-pointer.ts naming a value in the value log). Keys are the engine's internal
 * keys; to the format they are opaque bytes. Little-endian fixed-width integers; varints are
 * LEB128 (7 bits per byte, low group first).
 *
 *   file    = data-block* filter-block index-block properties-block footer
 *   X-block = [stored bytes][trailer]               (every block, data or not, has a trailer)
 *   trailer = [compression type u8][masked crc32c u32 LE]     5 bytes
 *             crc32c over the stored bytes followed by the type byte, masked (crc32c.ts)
 *
 *   block contents (data and index blocks, before compression; LevelDB block_builder.cc):
 *     entry* [restart offset u32 LE]*R [R u32 LE]
 *     entry    = [shared varint][unshared varint][valueTag varint][unshared key bytes][value]
 *                shared = bytes shared with the previous key of the block (0 at a restart)
 *     valueTag = valueBytes·4 + kind                  (so valueBytes < 2^30)
 *                version 1 tables (read, never written): valueBytes·2 + kind, kinds 0 and 1
 *     restarts: offsets of every 16th entry of a data block (every entry of the index block),
 *               first is 0, strictly increasing; R ≥ 1. A point read binary-searches them.
 *   data block:   about `blockBytes` of entries (a block closes after the entry that reaches it,
 *                 so one large entry makes a block of its own); compressed if lz4 saves ≥ 12.5%.
 *   index block:  one entry per data block, in file order: key = last key of that block,
 *                 kind 0, value = [offset varint][stored size varint]. Stored uncompressed.
 *   filter block: a bloom filter over all keys (bloom-filter.ts); empty = no filter.
 *   properties:   [entryCount varint][tombstoneCount varint][rawKeyBytes varint]
 *                 [rawValueBytes varint][dataBlockCount varint]
 *                 [smallestKey length varint][smallestKey][largestKey length varint][largestKey]
 *                 Readers ignore bytes after these fields (room for additions).
 *   footer (FOOTER_BYTES = 52, at the very end):
 *     0  index offset u64 LE      8  index size u32 LE        (sizes exclude the trailer)
 *     12 filter offset u64 LE     20 filter size u32 LE
 *     24 properties offset u64 LE 32 properties size u32 LE
 *     36 format version u8 (2)    37 reserved, 3 zero bytes
 *     40 masked crc32c of footer bytes 0..40, u32 LE
 *     44 magic, 8 bytes: "ringkvST"
 *
 * Corner cases: an empty table is not a table (entryCount ≥ 1, dataBlockCount ≥ 1);
 * zero-length keys (only the first key can be one) and zero-length values are allowed.
 * Offsets fit in 53 bits; a stored block is smaller than 4 GiB.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import { crc32c, maskCrc } from '../base/crc32c.js';

/** Written by this build; version 1 (one kind bit) is still read. */
export const SSTABLE_FORMAT_VERSION = 2;
export const SSTABLE_FORMAT_VERSION_MIN = 1;

/** Bits of the valueTag holding the kind, by format version. */
export function kindBitsOf(version: number): number {
  return version === 1 ? 1 : 2;
}
export const SSTABLE_MAGIC = new Uint8Array([0x72, 0x69, 0x6e, 0x67, 0x6b, 0x76, 0x53, 0x54]); // "ringkvST"
export const FOOTER_BYTES = 52;
export const BLOCK_TRAILER_BYTES = 5;
export const DATA_RESTART_INTERVAL = 16;
export const INDEX_RESTART_INTERVAL = 1;

export interface BlockHandle {
  offset: number;
  /** Stored bytes, trailer excluded. */
  sizeBytes: number;
}

export interface TableProperties {
  entryCount: number;
  tombstoneCount: number;
  rawKeyBytes: number;
  rawValueBytes: number;
  dataBlockCount: number;
  smallestKey: Uint8Array;
  largestKey: Uint8Array;
}

export interface Footer {
  index: BlockHandle;
  filter: BlockHandle;
  properties: BlockHandle;
  version: number;
}

export function corruption(message: string, file: string, offset: number): RingkvError {
  return new RingkvError(ErrorCode.corruption, `${message} (${file} at ${offset})`, { file, offset });
}

/** Bytewise order of a and b[start, end); a manual loop beats a native call for short keys. */
export function compareToRange(a: Uint8Array, b: Uint8Array, start: number, end: number): number {
  const bLength = end - start;
  const n = a.length < bLength ? a.length : bLength;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[start + i]!;
    if (d !== 0) return d;
  }
  return a.length - bLength;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return compareToRange(a, b, 0, b.length);
}

// --- varints ---------------------------------------------------------------------------

export function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

/** Writes n (0 ≤ n ≤ 2^53) at out[pos]; returns the position after it. */
export function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/** A forward reader over encoded fields; any overrun or malformed varint is corruption. */
export class FieldReader {
  pos: number;
  readonly #bytes: Uint8Array;
  readonly #end: number;
  readonly #file: string;
  readonly #fileOffset: number;

  constructor(bytes: Uint8Array, start: number, end: number, file: string, fileOffset: number) {
    this.#bytes = bytes;
    this.pos = start;
    this.#end = end;
    this.#file = file;
    this.#fileOffset = fileOffset;
  }

  get atEnd(): boolean {
    return this.pos >= this.#end;
  }

  /** A varint of up to 8 bytes whose value is a safe integer. */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8 && this.pos < this.#end; i++) {
      const b = this.#bytes[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) break;
        return value;
      }
      scale *= 128;
    }
    throw this.fail('malformed varint');
  }

  /** A view of the next `length` bytes. */
  bytes(length: number): Uint8Array {
    if (length > this.#end - this.pos) throw this.fail(`field of ${length} bytes overruns its block`);
    const out = this.#bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  fail(message: string): RingkvError {
    return corruption(message, this.#file, this.#fileOffset);
  }
}

// --- block trailer ---------------------------------------------------------------------

const typeByte = new Uint8Array(1);

export function blockCrc(stored: Uint8Array, type: number): number {
  typeByte[0] = type;
  return maskCrc(crc32c(typeByte, crc32c(stored)));
}

export function encodeTrailer(stored: Uint8Array, type: number): Uint8Array {
  const out = new Uint8Array(BLOCK_TRAILER_BYTES);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, blockCrc(stored, type), true);
  return out;
}

/**
 * Checks the trailer of `withTrailer` = stored bytes + trailer, as read from disk.
 * Returns the compression type; throws KV_CORRUPTION on a CRC mismatch.
 */
export function checkTrailer(withTrailer: Uint8Array, file: string, offset: number): number {
  const size = withTrailer.length - BLOCK_TRAILER_BYTES;
  const type = withTrailer[size]!;
  const storedCrc =
    (withTrailer[size + 1]! | (withTrailer[size + 2]! << 8) | (withTrailer[size + 3]! << 16) | (withTrailer[size + 4]! << 24)) >>> 0;
  typeByte[0] = type;
  const actual = maskCrc(crc32c(typeByte, crc32c(withTrailer, 0, 0, size)));
  if (actual !== storedCrc) throw corruption('block checksum mismatch', file, offset);
  return type;
}

// --- handles, footer, properties -------------------------------------------------------

export function encodeHandle(handle: BlockHandle): Uint8Array {
  const out = new Uint8Array(varintBytes(handle.offset) + varintBytes(handle.sizeBytes));
  writeVarint(out, writeVarint(out, 0, handle.offset), handle.sizeBytes);
  return out;
}

export function encodeFooter(footer: Footer): Uint8Array {
  const out = new Uint8Array(FOOTER_BYTES);
  const view = new DataView(out.buffer);
  const handles = [footer.index, footer.filter, footer.properties];
  for (let i = 0; i < handles.length; i++) {
    const handle = handles[i]!;
    view.setUint32(i * 12, handle.offset % 2 ** 32, true);
    view.setUint32(i * 12 + 4, Math.floor(handle.offset / 2 ** 32), true);
    view.setUint32(i * 12 + 8, handle.sizeBytes, true);
  }
  out[36] = footer.version;
  view.setUint32(40, maskCrc(crc32c(out, 0, 0, 40)), true);
  out.set(SSTABLE_MAGIC, 44);
  return out;
}

/** Decodes the last FOOTER_BYTES of a file found at `fileOffset`. Checks magic and CRC. */
export function decodeFooter(bytes: Uint8Array, file: string, fileOffset: number): Footer {
  for (let i = 0; i < SSTABLE_MAGIC.length; i++) {
    if (bytes[44 + i] !== SSTABLE_MAGIC[i]) throw corruption('bad sstable magic', file, fileOffset + 44);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, FOOTER_BYTES);
  if (view.getUint32(40, true) !== maskCrc(crc32c(bytes, 0, 0, 40))) {
    throw corruption('footer checksum mismatch', file, fileOffset);
  }
  const handle = (at: number): BlockHandle => {
    const high = view.getUint32(at + 4, true);
    if (high >= 2 ** 21) throw corruption('block offset beyond 2^53', file, fileOffset + at);
    return { offset: high * 2 ** 32 + view.getUint32(at, true), sizeBytes: view.getUint32(at + 8, true) };
  };
  return { index: handle(0), filter: handle(12), properties: handle(24), version: bytes[36]! };
}

export function encodeProperties(p: TableProperties): Uint8Array {
  const numbers = [p.entryCount, p.tombstoneCount, p.rawKeyBytes, p.rawValueBytes, p.dataBlockCount];
  let size = varintBytes(p.smallestKey.length) + p.smallestKey.length + varintBytes(p.largestKey.length) + p.largestKey.length;
  for (const n of numbers) size += varintBytes(n);
  const out = new Uint8Array(size);
  let pos = 0;
  for (const n of numbers) pos = writeVarint(out, pos, n);
  pos = writeVarint(out, pos, p.smallestKey.length);
  out.set(p.smallestKey, pos);
  pos = writeVarint(out, pos + p.smallestKey.length, p.largestKey.length);
  out.set(p.largestKey, pos);
  return out;
}

/** Decodes a properties block; keys are copied so the block can be dropped. */
export function decodeProperties(bytes: Uint8Array, file: string, fileOffset: number): TableProperties {
  const r = new FieldReader(bytes, 0, bytes.length, file, fileOffset);
  const entryCount = r.varint();
  const tombstoneCount = r.varint();
  const rawKeyBytes = r.varint();
  const rawValueBytes = r.varint();
  const dataBlockCount = r.varint();
  const smallestKey = r.bytes(r.varint()).slice();
  const largestKey = r.bytes(r.varint()).slice();
  if (entryCount < 1 || dataBlockCount < 1 || dataBlockCount > entryCount || tombstoneCount > entryCount) {
    throw r.fail('implausible table properties');
  }
  return { entryCount, tombstoneCount, rawKeyBytes, rawValueBytes, dataBlockCount, smallestKey, largestKey };
}

// --- decoded blocks --------------------------------------------------------------------

/** The contents of a data or index block, verified and uncompressed; immutable once parsed. */
export class Block {
  readonly data: Uint8Array;
  /** Offsets of the restart entries. */
  readonly restarts: Uint32Array;
  /** Where the entries end and the restart array begins. */
  readonly restartsOffset: number;
  /** For error messages: the table file and the block's offset in it. */
  readonly file: string;
  readonly offset: number;
  /** Low bits of a valueTag that hold the kind: 2 (format 2), 1 (format 1). */
  readonly kindBits: number;

  private constructor(data: Uint8Array, restarts: Uint32Array, restartsOffset: number, file: string, offset: number, kindBits: number) {
    this.kindBits = kindBits;
    this.data = data;
    this.restarts = restarts;
    this.restartsOffset = restartsOffset;
    this.file = file;
    this.offset = offset;
  }

  /** Validates the restart array (O(R)); entries are checked as they are decoded. */
  static parse(data: Uint8Array, file: string, offset: number, kindBits = kindBitsOf(SSTABLE_FORMAT_VERSION)): Block {
    const n = data.length;
    if (n < 4) throw corruption('block shorter than its restart count', file, offset);
    const count = (data[n - 4]! | (data[n - 3]! << 8) | (data[n - 2]! << 16) | (data[n - 1]! << 24)) >>> 0;
    if (count === 0 || count > (n - 4) / 4) throw corruption(`bad restart count ${count}`, file, offset);
    const restartsOffset = n - 4 - 4 * count;
    const restarts = new Uint32Array(count);
    let previous = -1;
    for (let i = 0; i < count; i++) {
      const at = restartsOffset + 4 * i;
      const r = (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
      if (r <= previous || r >= restartsOffset || (i === 0 && r !== 0)) throw corruption('bad restart offset', file, offset);
      restarts[i] = r;
      previous = r;
    }
    return new Block(data, restarts, restartsOffset, file, offset, kindBits);
  }
}

/** One decoded entry header; reused by its owner so decoding allocates nothing. */
export class EntryView {
  shared = 0;
  unshared = 0;
  kind = 0;
  valueBytes = 0;
  /** Offset in block.data of the unshared key bytes. */
  keyStart = 0;
  valueStart = 0;
  /** Offset of the following entry (== block.restartsOffset after the last one). */
  next = 0;
}

let varintEnd = 0;

/** Slow path: a varint of up to 5 bytes below 2^32 at data[p], ending before limit; -1 if malformed. */
function readVarint32(data: Uint8Array, p: number, limit: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 5 && p < limit; i++) {
    const b = data[p++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      varintEnd = p;
      return value < 2 ** 32 ? value : -1;
    }
    scale *= 128;
  }
  return -1;
}

/** Decodes the entry header at `p` into `out`; throws KV_CORRUPTION on any overrun. */
export function decodeEntry(block: Block, p: number, prevKeyLength: number, out: EntryView): void {
  const data = block.data;
  const limit = block.restartsOffset;
  let shared = p < limit ? data[p]! : 0x80;
  if (shared < 0x80) p++;
  else if ((shared = readVarint32(data, p, limit)) >= 0) p = varintEnd;
  let unshared = p < limit ? data[p]! : 0x80;
  if (unshared < 0x80) p++;
  else if ((unshared = readVarint32(data, p, limit)) >= 0) p = varintEnd;
  let tag = p < limit ? data[p]! : 0x80;
  if (tag < 0x80) p++;
  else if ((tag = readVarint32(data, p, limit)) >= 0) p = varintEnd;
  const kindBits = block.kindBits;
  const valueBytes = tag >>> kindBits;
  const kind = tag & ((1 << kindBits) - 1);
  if (shared < 0 || unshared < 0 || tag < 0 || kind > 2 || shared > prevKeyLength || p + unshared + valueBytes > limit) {
    throw corruption('malformed block entry', block.file, block.offset);
  }
  out.shared = shared;
  out.unshared = unshared;
  out.kind = kind;
  out.valueBytes = valueBytes;
  out.keyStart = p;
  out.valueStart = p + unshared;
  out.next = p + unshared + valueBytes;
}
