/**
 * RESP command parsing: the one seam of `redis-parser` (the parser node-redis and ioredis
 * use; about 4.5M pipelined SETs/s here with `returnBuffers`). A client sends each command as
 * an array of bulk strings (`*<n>\r\n$<len>\r\n<bytes>\r\n...`); pipelined commands simply
 * follow each other. Pure, any thread; the RESP listener owns one parser per connection.
 *
 * redis-parser parses replies, so it accepts more than commands and bounds nothing. This
 * wrapper adds what a server needs:
 * - anything but a flat array of bulk strings is a protocol error (`onProtocolError`), as are
 *   inline commands (plain text lines, which Redis also accepts: telnet users must send arrays);
 * - arguments are bounded in count (`argsMax`) and size (`bulkBytesMax`);
 * - `pendingBytes` is the input held for an unfinished command (a partial frame, including a
 *   huge bulk string in progress), so the listener can refuse a connection that would make it
 *   buffer more than its bound; a hostile length header therefore costs at most that bound.
 * - empty lines between commands are skipped, as Redis does (`redis-cli --pipe` sends one
 *   before its closing ECHO): redis-parser stops at the stray CR; we restart it after it.
 * After a protocol error the parser is unusable: the connection must be closed.
 */

import { createRequire } from 'node:module';
import { Buffer } from 'node:buffer';

interface RawParser {
  execute(buffer: Buffer): void;
  reset(): void;
  buffer: Buffer | null;
  offset: number;
  bigStrSize: number;
  totalChunkSize: number;
  /** Partly parsed arrays, outermost first (each allocated with its declared length). */
  arrayCache: unknown[][];
}

type RawParserClass = new (options: {
  returnReply: (reply: unknown) => void;
  returnError: (error: Error) => void;
  returnFatalError: (error: Error) => void;
  returnBuffers: boolean;
  stringNumbers: boolean;
}) => RawParser;

const RedisParser = createRequire(import.meta.url)('redis-parser') as RawParserClass;

export interface RespParserOptions {
  /** One complete command: its arguments (views of the input, valid as long as they are referenced). */
  onCommand: (args: Buffer[]) => void;
  /** The input is not a command stream; the message is Redis's wording, without "-ERR ". */
  onProtocolError: (message: string) => void;
  argsMax: number;
  bulkBytesMax: number;
}

export class RespParser {
  readonly #parser: RawParser;
  readonly #options: RespParserOptions;
  #failed = false;
  /** Input since the last complete command (an upper bound on what the unfinished one holds). */
  #heldBytes = 0;
  #completed = false;
  /** What execute was given, to find the bytes after a stray CR/LF. */
  #chunk: Buffer | undefined;
  #previousTail: Buffer | undefined;
  #resume: Buffer | undefined;

  constructor(options: RespParserOptions) {
    this.#options = options;
    this.#parser = new RedisParser({
      returnReply: (reply) => this.#onReply(reply),
      returnError: () => this.#fail("Protocol error: expected '*', got '-'"),
      returnFatalError: (error) => this.#onFatal(error),
      returnBuffers: true,
      stringNumbers: false,
    });
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Between commands: no partial input held, so the next byte starts a command. */
  get idle(): boolean {
    return !this.#failed && this.#parser.buffer === null && this.#resume === undefined;
  }

  /**
   * Input bytes the unfinished command holds, at most: everything since the last complete
   * command, less what the parser already let go of (counted from its unparsed tail).
   */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  #tailBytes(): number {
    const p = this.#parser;
    if (p.buffer === null) return 0;
    return p.bigStrSize > 0 ? p.totalChunkSize : p.buffer.length - p.offset;
  }

  /** Parses a chunk of input; commands are delivered synchronously, in order. */
  execute(chunk: Buffer): void {
    if (this.#failed) return;
    this.#heldBytes += chunk.length;
    const p = this.#parser;
    this.#chunk = chunk;
    this.#previousTail = p.buffer !== null && p.bigStrSize === 0 ? p.buffer.subarray(p.offset) : undefined;
    try {
      p.execute(chunk);
    } catch (error) {
      // A length no array can have, or nesting deeper than the stack: not a command stream.
      this.#fail(`Protocol error: ${(error as Error).message}`);
    }
    this.#chunk = undefined;
    this.#previousTail = undefined;
    // A command in progress that can only be refused later: refuse it now, before its
    // elements are parsed one by one (a declared length of 2^31 would otherwise run on).
    if (p.bigStrSize > 0 && p.bigStrSize - p.offset - 2 > this.#options.bulkBytesMax) return this.#fail('Protocol error: invalid bulk length');
    const partial = p.arrayCache;
    if (partial.length > 1) return this.#fail("Protocol error: expected '$', got '*'");
    if (partial.length === 1 && partial[0]!.length > this.#options.argsMax) return this.#fail('Protocol error: invalid multibulk length');
    const resume = this.#resume;
    if (resume !== undefined) {
      this.#resume = undefined;
      p.reset();
      let start = 0;
      while (start < resume.length && (resume[start] === 13 || resume[start] === 10)) start++;
      this.#heldBytes = 0;
      if (start < resume.length) this.execute(resume.subarray(start));
      return;
    }
    if (this.#completed) {
      this.#completed = false;
      this.#heldBytes = this.#tailBytes();
    }
  }

  /** redis-parser met a byte that starts no reply: skip it if it is a stray CR or LF. */
  #onFatal(error: Error): void {
    const offset = (error as Error & { offset?: number }).offset;
    const chunk = this.#chunk;
    if (typeof offset === 'number' && chunk !== undefined) {
      const working = this.#previousTail === undefined ? chunk : Buffer.concat([this.#previousTail, chunk]);
      const byte = working[offset - 1];
      if (byte === 13 || byte === 10) {
        this.#resume = working.subarray(offset);
        return;
      }
    }
    this.#fail(`Protocol error: ${error.message.replace(/ as reply type byte$/, '')}`);
  }

  #fail(message: string): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#options.onProtocolError(message);
  }

  #onReply(reply: unknown): void {
    if (this.#failed) return;
    if (!Array.isArray(reply)) {
      this.#fail(reply === null ? "Protocol error: expected '*', got a null array" : "Protocol error: expected '*' (inline commands are not supported)");
      return;
    }
    if (reply.length > this.#options.argsMax) return this.#fail('Protocol error: invalid multibulk length');
    const bulkBytesMax = this.#options.bulkBytesMax;
    for (let i = 0; i < reply.length; i++) {
      const arg: unknown = reply[i];
      if (!(arg instanceof Uint8Array)) return this.#fail("Protocol error: expected '$'");
      if (arg.length > bulkBytesMax) return this.#fail('Protocol error: invalid bulk length');
    }
    this.#completed = true;
    this.#options.onCommand(reply as Buffer[]);
  }
}

/** Where the key of the last `plainGetAt` match starts and ends in its chunk. */
export const plainGetKey = { start: 0, end: 0 };

const getPrefix = [0x2a, 0x32, 0x0d, 0x0a, 0x24, 0x33, 0x0d, 0x0a]; // "*2\r\n$3\r\n"

/**
 * Whether `chunk` holds, complete at `at`, the command GET <key> as every client sends it
 * (`*2\r\n$3\r\nGET\r\n$<n>\r\n<key>\r\n`, any letter case, a key of at most
 * `keyBytesMax` bytes): the end of the command, its key's bounds left in `plainGetKey`; else
 * -1, and the caller hands the input to the parser. This reads nothing else: anything but
 * that exact shape, even a valid one, is the parser's. It lets the listener answer the
 * commonest command of a pipeline without an array and two buffers per command (the parser's
 * output shape); the RESP benchmark (perf/resp.ts) is its reason.
 */
export function plainGetAt(chunk: Uint8Array, at: number, keyBytesMax: number): number {
  if (chunk.length - at < 17) return -1;
  for (let i = 0; i < 8; i++) if (chunk[at + i] !== getPrefix[i]) return -1;
  if ((chunk[at + 8]! | 0x20) !== 0x67 || (chunk[at + 9]! | 0x20) !== 0x65 || (chunk[at + 10]! | 0x20) !== 0x74) return -1;
  if (chunk[at + 11] !== 0x0d || chunk[at + 12] !== 0x0a || chunk[at + 13] !== 0x24) return -1;
  let i = at + 14;
  let length = 0;
  const digitsEnd = Math.min(chunk.length, i + 8);
  const digitsStart = i;
  while (i < digitsEnd && chunk[i]! >= 0x30 && chunk[i]! <= 0x39) length = length * 10 + (chunk[i++]! - 0x30);
  if (i === digitsStart || length > keyBytesMax || i + 2 + length + 2 > chunk.length) return -1;
  if (chunk[i] !== 0x0d || chunk[i + 1] !== 0x0a) return -1;
  const start = i + 2;
  const end = start + length;
  if (chunk[end] !== 0x0d || chunk[end + 1] !== 0x0a) return -1;
  plainGetKey.start = start;
  plainGetKey.end = end;
  return end + 2;
}
