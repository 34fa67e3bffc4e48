/**
 * RESP replies (the Redis serialization protocol, RESP2 and RESP3): the values a command
 * answers with, and the writer that encodes them into one growing buffer per connection, so
 * a pipeline's replies leave in one socket write. Pure codec, any thread; the RESP listener
 * (lib/transport/resp-listener.ts) owns one writer per connection.
 *
 * Reply values carry no wrapper when they need none, so the hot replies allocate nothing:
 *   Uint8Array          bulk string   $<len>\r\n<bytes>\r\n
 *   null                nil           RESP2 $-1\r\n (in an array too) · RESP3 _\r\n
 *   number | bigint     integer       :<n>\r\n (integers only; see `double` for others)
 *   RespReply[]         array         *<n>\r\n then each element
 *   { simple }          simple string +<text>\r\n (no CR or LF in text)
 *   { error }           error         -<CODE message>\r\n (no CR or LF; Redis's shape: the first
 *                                      word is the code: ERR, NOAUTH, WRONGPASS, KV_TIMEOUT ...)
 *   { map }             map           RESP3 %<n>\r\n k v ...  · RESP2 a flat array *<2n>
 *   { text }            bulk string from a JS string (UTF-8)
 *   { double }          RESP3 ,<x>\r\n · RESP2 a bulk string
 * Spec: https://redis.io/docs/reference/protocol-spec/ (RESP3: github.com/antirez/RESP3).
 */

import { Buffer } from 'node:buffer';

export type RespReply =
  | Uint8Array
  | null
  | number
  | bigint
  | RespReply[]
  | { readonly simple: string }
  | { readonly error: string }
  | { readonly map: readonly (readonly [RespReply, RespReply])[] }
  | { readonly text: string }
  | { readonly double: number };

export const ok: RespReply = Object.freeze({ simple: 'OK' });
export const pong: RespReply = Object.freeze({ simple: 'PONG' });

export function respError(message: string): RespReply {
  return { error: message.replace(/[\r\n]+/g, ' ') };
}

const crlf = 0x0a0d; // "\r\n" little-endian, written with writeUInt16LE
const initialBytes = 16 * 1024;
/** A writer's buffer shrinks back to this after a flush that grew it past. */
const retainedBytesMax = 256 * 1024;

/** Encodes replies into one buffer; `take()` hands the bytes over for a socket write. */
export class RespWriter {
  #buffer: Buffer = Buffer.allocUnsafe(initialBytes);
  #length = 0;
  /** 2 or 3 (HELLO). */
  protocol: 2 | 3 = 2;

  get length(): number {
    return this.#length;
  }

  /** Drops what was written after `length` bytes (a reply that failed halfway). */
  truncate(length: number): void {
    if (length >= 0 && length < this.#length) this.#length = length;
  }

  /** The bytes written since the last take (a copy when small, so the buffer is reused). */
  take(): Buffer {
    const n = this.#length;
    this.#length = 0;
    if (n <= 8 * 1024) return Buffer.from(this.#buffer.subarray(0, n));
    const out = this.#buffer.subarray(0, n);
    this.#buffer = Buffer.allocUnsafe(this.#buffer.length > retainedBytesMax ? initialBytes : this.#buffer.length);
    return out;
  }

  #reserve(bytes: number): void {
    const need = this.#length + bytes;
    if (need <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.#buffer.length * 2));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }

  #line(prefix: number, text: string): void {
    this.#reserve(3 + text.length * 3);
    const b = this.#buffer;
    b[this.#length] = prefix;
    this.#length += 1 + b.write(text, this.#length + 1, 'utf8');
    b.writeUInt16LE(crlf, this.#length);
    this.#length += 2;
  }

  #header(prefix: number, n: number | bigint): void {
    this.#reserve(24);
    const b = this.#buffer;
    b[this.#length] = prefix;
    let at = this.#length + 1;
    if (typeof n === 'number' && n >= 0 && n < 1e9 && Number.isInteger(n)) {
      at = writeDigits(b, at, n);
    } else {
      at += b.write(String(n), at, 'latin1');
    }
    b.writeUInt16LE(crlf, at);
    this.#length = at + 2;
  }

  bulk(bytes: Uint8Array): void {
    this.#header(0x24, bytes.length);
    this.#reserve(bytes.length + 2);
    const b = this.#buffer;
    if (bytes.length <= 32) {
      for (let i = 0; i < bytes.length; i++) b[this.#length + i] = bytes[i]!;
    } else {
      b.set(bytes, this.#length);
    }
    this.#length += bytes.length;
    b.writeUInt16LE(crlf, this.#length);
    this.#length += 2;
  }

  /** A bulk string of `bytes[at, at + length)` (no view made of it). */
  bulkRange(bytes: Uint8Array, at: number, length: number): void {
    this.#header(0x24, length);
    this.#reserve(length + 2);
    const b = this.#buffer;
    const to = this.#length;
    if (length <= 64) {
      for (let i = 0; i < length; i++) b[to + i] = bytes[at + i]!;
    } else {
      b.set(new Uint8Array(bytes.buffer, bytes.byteOffset + at, length), to);
    }
    this.#length = to + length;
    b.writeUInt16LE(crlf, this.#length);
    this.#length += 2;
  }

  nil(): void {
    if (this.protocol === 3) this.#line(0x5f, '');
    else this.#header(0x24, -1);
  }

  integer(n: number | bigint): void {
    this.#header(0x3a, n);
  }

  simple(text: string): void {
    this.#line(0x2b, text);
  }

  error(text: string): void {
    this.#line(0x2d, text);
  }

  arrayHeader(n: number): void {
    this.#header(0x2a, n);
  }

  /** Encodes any reply value. */
  write(reply: RespReply): void {
    if (reply === null) return this.nil();
    if (reply instanceof Uint8Array) return this.bulk(reply);
    if (typeof reply === 'number' || typeof reply === 'bigint') return this.integer(reply);
    if (Array.isArray(reply)) {
      this.arrayHeader(reply.length);
      for (const element of reply) this.write(element);
      return;
    }
    this.#writeTagged(reply as Exclude<RespReply, Uint8Array | null | number | bigint | RespReply[]>);
  }

  #writeTagged(reply: Exclude<RespReply, Uint8Array | null | number | bigint | RespReply[]>): void {
    if ('simple' in reply) return this.simple(reply.simple);
    if ('error' in reply) return this.error(reply.error);
    if ('text' in reply) return this.bulk(Buffer.from(reply.text, 'utf8'));
    if ('double' in reply) {
      if (this.protocol === 3) return this.#line(0x2c, String(reply.double));
      return this.bulk(Buffer.from(String(reply.double), 'latin1'));
    }
    if (this.protocol === 3) this.#header(0x25, reply.map.length);
    else this.arrayHeader(reply.map.length * 2);
    for (const [key, value] of reply.map) {
      this.write(key);
      this.write(value);
    }
  }
}

/** Writes the decimal digits of `n` (an integer in [0, 1e9)) at `at`; returns the end. */
function writeDigits(b: Uint8Array, at: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  let i = at + digits;
  const end = i;
  do {
    const next = Math.floor(n / 10);
    b[--i] = 0x30 + n - next * 10;
    n = next;
  } while (n > 0);
  return end;
}
