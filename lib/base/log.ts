/**
 * The one door to pino (and pino-pretty). One root logger per process (or worker thread),
 * child loggers per shard and per peer. Nothing else in ringkv imports pino or writes to the
 * console.
 *
 * Level: RINGKV_LOG_LEVEL, else 'info' ('silent' under the test runner unless asked). INFO is
 * for operators: joins, leaves, downs, ups, repairs started and finished, node start and stop;
 * never one line per request (those are metrics).
 * Format: 'pretty' (pino-pretty: time, level, message, fields, coloured) when the log stream
 * (stderr) is a terminal, else 'json' (one object per line, for collectors); RINGKV_LOG_FORMAT
 * or the `format` option (`--log-format`) overrides. Both write synchronously, so a crash
 * loses no line.
 * Secrets never reach a log line: the `redact` paths below cover the fields we use for them.
 */

import { pino, type Logger as PinoLogger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export type Logger = PinoLogger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormat = 'json' | 'pretty';
export const logFormats: readonly LogFormat[] = ['json', 'pretty'];

export interface LoggerOptions {
  level?: LogLevel;
  name?: string;
  /** Where lines go; default stderr so that CLI output on stdout stays clean. */
  destination?: { write(line: string): void };
  /** Default: RINGKV_LOG_FORMAT, else 'pretty' when stderr is a terminal, else 'json'. */
  format?: LogFormat;
  /** Whether the destination is a terminal (colours, and the default format); default stderr's. */
  isTerminal?: boolean;
}

/** The format a logger writes: the option, else RINGKV_LOG_FORMAT, else pretty on a terminal. */
export function logFormatOf(options: Pick<LoggerOptions, 'format' | 'isTerminal'>, env: Readonly<Record<string, string | undefined>> = process.env): LogFormat {
  if (options.format !== undefined) return options.format;
  const fromEnv = env.RINGKV_LOG_FORMAT;
  if (fromEnv === 'json' || fromEnv === 'pretty') return fromEnv;
  return (options.isTerminal ?? process.stderr.isTTY === true) ? 'pretty' : 'json';
}

function defaultLevel(): LogLevel {
  const fromEnv = process.env.RINGKV_LOG_LEVEL as LogLevel | undefined;
  if (fromEnv) return fromEnv;
  return process.env.TAP === '1' ? 'silent' : 'info';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const pinoOptions = {
    level: options.level ?? defaultLevel(),
    name: options.name ?? 'ringkv',
    redact: ['secret', 'token', 'authorization', '*.secret', '*.token', '*.authorization'],
  };
  const isTerminal = options.isTerminal ?? (options.destination === undefined && process.stderr.isTTY === true);
  if (logFormatOf({ ...options, isTerminal }) === 'pretty') {
    const format = prettyFactory({ colorize: isTerminal, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
    const target = options.destination ?? pino.destination({ fd: 2, sync: true });
    return pino(pinoOptions, { write: (line: string) => target.write(format(line)) });
  }
  if (options.destination) return pino(pinoOptions, options.destination);
  return pino(pinoOptions, pino.destination({ fd: 2, sync: true }));
}

let root: Logger | undefined;

/** The process's root logger, created on first use. */
export function rootLogger(): Logger {
  root ??= createLogger();
  return root;
}

/** A logger that drops everything; the default for library objects given none. */
export const silentLogger: Logger = pino({ level: 'silent' });
