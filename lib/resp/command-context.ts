/**
 * What every RESP command runs with, and the argument and error helpers they share: Redis's
 * own error wording (clients and tests match on it), and ringkv's errors as `-<CODE> message`
 * with the stable RingkvError code as the first word, the way Redis names its own (NOAUTH,
 * WRONGTYPE): ioredis and redis-cli show them as errors, scripts can match the code.
 */

import { Buffer as BufferClass, type Buffer } from 'node:buffer';
import { isRingkvError } from '../base/errors.js';
import { respError, type RespReply } from '../protocol/resp-reply.js';
import type { RespListenerStats, RespSession } from '../transport/resp-listener.js';
import type { KeyLocks } from './key-locks.js';
import type { Args, RespOperations } from './resp-operations.js';

export interface CommandContext {
  readonly session: RespSession;
  readonly ops: RespOperations;
  readonly locks: KeyLocks;
  /** The listener's counters and sessions (INFO, CLIENT LIST). */
  readonly listener: { readonly stats: RespListenerStats; sessions(): RespSession[] };
  readonly startedMs: number;
}

export type CommandRun = (context: CommandContext, args: Args) => RespReply | Promise<RespReply>;

export interface CommandSpec {
  /** Lower case, as COMMAND lists it. */
  readonly name: string;
  /** Redis convention: n exactly n arguments (name included); -n at least n. */
  readonly arity: number;
  readonly flags: readonly string[];
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  readonly run: CommandRun;
}

export const syntaxError = respError('ERR syntax error');
export const notInteger = respError('ERR value is not an integer or out of range');

export function wrongArity(name: string): RespReply {
  return respError(`ERR wrong number of arguments for '${name}' command`);
}

/** A failed operation as its reply; anything but a RingkvError is a bug and rethrown. */
export function failureReply(error: unknown): RespReply {
  if (isRingkvError(error)) return respError(`${error.code} ${error.message}`);
  if (error instanceof RangeError || error instanceof TypeError) return respError(`ERR ${error.message}`);
  throw error;
}

/** Runs an operation, turning its RingkvError into the reply. */
export function guarded(work: Promise<RespReply>): Promise<RespReply> {
  return work.catch(failureReply);
}

/** `work`'s result as `reply(result)`, or its RingkvError as the reply: one promise, not two. */
export function answer<T>(work: Promise<T>, reply: (result: T) => RespReply): Promise<RespReply> {
  return work.then(reply, failureReply);
}

const int64Max = 2n ** 63n - 1n;
const int64Min = -(2n ** 63n);
const integerPattern = /^-?(0|[1-9][0-9]*)$/;

/** A decimal integer within int64 (Redis's string2ll), or undefined. */
export function parseInteger(bytes: Uint8Array | undefined): bigint | undefined {
  if (bytes === undefined || bytes.length === 0 || bytes.length > 20) return undefined;
  const text = BufferClass.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  if (!integerPattern.test(text)) return undefined;
  const n = BigInt(text);
  return n > int64Max || n < int64Min ? undefined : n;
}

/** parseInteger as a number when it is a safe integer. */
export function parseSafeInteger(bytes: Uint8Array | undefined): number | undefined {
  const n = parseInteger(bytes);
  if (n === undefined || n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) return undefined;
  return Number(n);
}

export function isInt64(n: bigint): boolean {
  return n <= int64Max && n >= int64Min;
}

/** An argument in upper case ASCII (option names). */
export function upper(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('latin1').toUpperCase();
}
