/**
 * The one door to pino. One root logger per process (or worker thread), child loggers per
 * shard and per peer. Nothing else in ringkv imports pino or writes to the console.
 *
 * Level: RINGKV_LOG_LEVEL, else 'info' ('silent' under the test runner unless asked).
 * Secrets never reach a log line: the `redact` paths below cover the fields we use for them.
 */

import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerOptions {
  level?: LogLevel;
  name?: string;
  /** Where lines go; default stderr so that CLI output on stdout stays clean. */
  destination?: { write(line: string): void };
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
