/**
 * Progress of long work for `ringkv repair | leave | cleanup | removenode | status --watch`,
 * always on stderr (stdout keeps the result, for scripts). The only file importing
 * cli-progress.
 *
 * On a terminal: cli-progress bars redrawn in place — what, bar, done/total, rate, ETA; several
 * at once for `status --watch` (a MultiBar, with the status table logged above the bars).
 * Off a terminal (a pipe, a file, CI logs): no escape codes, one plain line per item when it
 * starts, at most every `cliProgressLineMs` while it moves, and when it ends:
 *   `repair: 12/40 exchanges (30%), 3.1/s, ETA 9s`
 * Rate is done per second since the item started; ETA is what is left at that rate.
 * Owner: the CLI's main thread.
 */

import { systemClock } from '../base/clock.js';
import cliProgress from 'cli-progress';
import { limits } from '../base/limits.js';
import type { CliIo } from './cli-io.js';

export interface ProgressItem {
  /** Stable identity across updates (one bar per key). */
  readonly key: string;
  readonly what: string;
  readonly done: number;
  readonly total: number;
  readonly unit: string;
}

interface Track {
  startedMs: number;
  startDone: number;
  lastLineMs: number;
  lastLineDone: number;
  bar?: cliProgress.SingleBar;
}

/** `12/40 exchanges (30%), 3.1/s, ETA 9s` — shared by bars and lines. */
export function progressText(item: ProgressItem, elapsedMs: number, doneSinceStart: number): string {
  const percent = item.total === 0 ? 100 : Math.floor((100 * item.done) / item.total);
  const rate = elapsedMs > 0 ? (1000 * doneSinceStart) / elapsedMs : 0;
  const left = Math.max(0, item.total - item.done);
  const eta = left === 0 ? '0s' : rate > 0 ? formatSeconds(left / rate) : '?';
  return `${item.done}/${item.total} ${item.unit} (${percent}%), ${rate.toFixed(1)}/s, ETA ${eta}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.ceil(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

/** The stream bars draw on: stderr, when CliIo knows it is a terminal. */
function terminalOf(io: CliIo): NodeJS.WriteStream | undefined {
  return io.errTerminal?.isTTY === true ? io.errTerminal : undefined;
}

export class Progress {
  readonly #io: CliIo;
  readonly #terminal: NodeJS.WriteStream | undefined;
  readonly #tracks = new Map<string, Track>();
  readonly #multi: cliProgress.MultiBar | undefined;

  constructor(io: CliIo) {
    this.#io = io;
    this.#terminal = terminalOf(io);
    this.#multi =
      this.#terminal &&
      new cliProgress.MultiBar({
        stream: this.#terminal,
        format: (_options, params, payload: { what: string; text: string }) => `${payload.what.padEnd(18)} ${cliProgress.Format.BarFormat(params.progress, _options)} ${payload.text}`,
        barCompleteChar: cliProgress.Presets.shades_classic.barCompleteChar,
        barIncompleteChar: cliProgress.Presets.shades_classic.barIncompleteChar,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
      });
  }

  get isTerminal(): boolean {
    return this.#terminal !== undefined;
  }

  /** Prints text above the bars (terminal) or as is (elsewhere), on stderr. */
  log(text: string): void {
    const line = text.endsWith('\n') ? text : `${text}\n`;
    // MultiBar.log prints on its next redraw, and it redraws only while it has bars.
    if (this.#multi && [...this.#tracks.values()].some((track) => track.bar)) this.#multi.log(line);
    else if (this.#terminal) this.#terminal.write(line);
    else this.#io.err(line);
  }

  /** Shows the items now; items gone since the last call end (their last line printed). */
  update(items: readonly ProgressItem[]): void {
    const now = this.#now();
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(item.key);
      let track = this.#tracks.get(item.key);
      const fresh = track === undefined;
      if (track === undefined) this.#tracks.set(item.key, (track = { startedMs: now, startDone: item.done, lastLineMs: now, lastLineDone: -1 }));
      const text = progressText(item, now - track.startedMs, item.done - track.startDone);
      if (this.#multi) {
        track.bar ??= this.#multi.create(Math.max(1, item.total), 0, { what: item.what, text });
        track.bar.setTotal(Math.max(1, item.total));
        track.bar.update(item.done, { what: item.what, text });
      } else if (fresh || (now - track.lastLineMs >= limits.cliProgressLineMs && item.done !== track.lastLineDone)) {
        this.#io.err(`${item.what}: ${text}\n`);
        track.lastLineMs = now;
        track.lastLineDone = item.done;
      }
    }
    for (const [key, track] of this.#tracks) {
      if (seen.has(key)) continue;
      if (track.bar) this.#multi!.remove(track.bar);
      this.#tracks.delete(key);
    }
  }

  /** Ends every bar; off a terminal, prints each item's last state once more. */
  stop(last: readonly ProgressItem[] = []): void {
    const now = this.#now();
    for (const item of last) {
      const track = this.#tracks.get(item.key);
      if (track?.bar) track.bar.update(item.done, { what: item.what, text: progressText(item, now - track.startedMs, item.done - track.startDone) });
      else if (track === undefined || track.lastLineDone !== item.done) this.#io.err(`${item.what}: ${progressText(item, now - (track?.startedMs ?? now), item.done - (track?.startDone ?? item.done))}\n`);
    }
    this.#multi?.stop();
    this.#tracks.clear();
  }

  #now(): number {
    return this.#io.now?.() ?? systemClock.monotonicMs();
  }
}
