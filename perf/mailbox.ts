/**
 * Mailbox benchmark: the SharedArrayBuffer mailbox against `postMessage`, main thread ↔ one
 * worker, measured in the same run, alternating, ≥ 3 rounds, medians reported (PERF.md method).
 *
 * Workloads (the goal in PERF.md: mailbox ≥ 10× postMessage for small pipelined messages):
 *  - roundtrip: 16-byte messages echoed by the worker, `inFlight` outstanding (default 1000);
 *    the main thread waits with Atomics.waitAsync; p50/p99 from every 16th message. Two
 *    postMessage peers: the same 16 bytes as a Uint8Array (like for like), and a bare number
 *    (postMessage's cheapest possible message, a floor rather than a realistic peer);
 *  - small:     one way, 16–64-byte frames, published every `publishEveryFrames` frames;
 *  - large:     one way, 10 KiB frames.
 * One way, postMessage sends the same frames as Uint8Arrays (each with its own ArrayBuffer).
 *
 * Run: `node build/perf/mailbox.js [--no-save]` (after tsc). Prints machine, Node version,
 * throughput and ratios, and appends one JSON line to perf/results/mailbox.jsonl.
 */

import { once } from 'node:events';
import { appendFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { limits } from '../lib/base/limits.js';
import { SeededRng } from '../lib/base/rng.js';
import { MailboxConsumer, MailboxProducer, createMailbox } from '../lib/mailbox/index.js';

export interface MailboxBenchOptions {
  rounds?: number;
  inFlight?: number;
  /** Messages per round, per workload; postMessage gets fewer (it is slower), rates compare. */
  mailboxRoundTrips?: number;
  postRoundTrips?: number;
  mailboxSmallFrames?: number;
  postSmallFrames?: number;
  mailboxLargeFrames?: number;
  postLargeFrames?: number;
  largeFrameBytes?: number;
  capacityBytes?: number;
  publishEveryFrames?: number;
  /** Where to append the JSON line; null to skip. */
  resultsPath?: string | null;
  print?: (line: string) => void;
}

interface Run {
  messagesPerSec: number;
  bytesPerSec: number;
  p50Us?: number;
  p99Us?: number;
}

interface Comparison {
  mailbox: Summary;
  /** postMessage variants, by name. */
  peers: Record<string, Summary>;
  /** Per peer: the median over rounds of mailbox/peer. */
  ratios: Record<string, number>;
}

type Side = (warmUp: boolean) => Promise<Run>;

interface Summary {
  messagesPerSec: number;
  bytesPerSec: number;
  p50Us?: number;
  p99Us?: number;
  roundsMessagesPerSec: number[];
}

export interface MailboxBenchResult {
  bench: 'mailbox';
  time: string;
  machine: { cpu: string; cores: number };
  node: string;
  options: Required<Omit<MailboxBenchOptions, 'print' | 'resultsPath'>>;
  roundtrip: Comparison;
  small: Comparison;
  large: Comparison;
}

const SAMPLE_EVERY = 16;
const ROUND_TRIP_FRAME_BYTES = 16;
const workerUrl = new URL('./fixtures/mailbox-echo-worker.js', import.meta.url);

async function startWorker(workerData: Record<string, unknown>): Promise<Worker> {
  const worker = new Worker(workerUrl, { workerData });
  const [message] = (await once(worker, 'message')) as [unknown];
  if (message !== 'ready') throw new Error(`worker sent ${String(message)} before ready`);
  return worker;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

function latencyRun(messages: number, bytes: number, elapsedMs: number, latenciesMs: Float64Array): Run {
  latenciesMs.sort();
  return {
    messagesPerSec: (messages / elapsedMs) * 1000,
    bytesPerSec: (bytes / elapsedMs) * 1000,
    p50Us: percentile(latenciesMs, 0.5) * 1000,
    p99Us: percentile(latenciesMs, 0.99) * 1000,
  };
}

async function mailboxRoundTrips(messages: number, inFlight: number, capacityBytes: number): Promise<Run> {
  const requests = createMailbox(capacityBytes);
  const replies = createMailbox(capacityBytes);
  const worker = await startWorker({ mode: 'mailbox-echo', requests, replies });
  const producer = new MailboxProducer(requests);
  const consumer = new MailboxConsumer(replies);
  const sentAtMs = new Float64Array(Math.ceil(messages / SAMPLE_EVERY));
  const latenciesMs = new Float64Array(sentAtMs.length);
  let sent = 0;
  let received = 0;
  const send = (): void => {
    const start = producer.reserveSpan(ROUND_TRIP_FRAME_BYTES);
    if (start < 0) throw new Error('request mailbox full: raise capacityBytes');
    const bytes = producer.bytes;
    bytes[start] = sent;
    bytes[start + 1] = sent >>> 8;
    bytes[start + 2] = sent >>> 16;
    bytes[start + 3] = sent >>> 24;
    if (sent % SAMPLE_EVERY === 0) sentAtMs[sent / SAMPLE_EVERY] = performance.now();
    producer.commit();
    sent++;
  };
  const startMs = performance.now();
  while (sent < Math.min(inFlight, messages)) send();
  producer.publish();
  await consumer.pump({
    visitSpan(bytes, start) {
      const sequence = (bytes[start]! | (bytes[start + 1]! << 8) | (bytes[start + 2]! << 16) | (bytes[start + 3]! << 24)) >>> 0;
      if (sequence % SAMPLE_EVERY === 0) latenciesMs[sequence / SAMPLE_EVERY] = performance.now() - sentAtMs[sequence / SAMPLE_EVERY]!;
      received++;
      if (sent < messages) send();
    },
    afterDrain: () => (received === messages ? producer.close() : producer.publish()),
  });
  const elapsedMs = performance.now() - startMs;
  await worker.terminate();
  return latencyRun(messages, messages * ROUND_TRIP_FRAME_BYTES * 2, elapsedMs, latenciesMs);
}

async function postRoundTrips(messages: number, inFlight: number, payload: 'bytes' | 'number'): Promise<Run> {
  const worker = await startWorker({ mode: 'post-echo' });
  const frameBytes = payload === 'bytes' ? ROUND_TRIP_FRAME_BYTES : 8;
  const sentAtMs = new Float64Array(Math.ceil(messages / SAMPLE_EVERY));
  const latenciesMs = new Float64Array(sentAtMs.length);
  let sent = 0;
  let received = 0;
  const send = (): void => {
    if (sent % SAMPLE_EVERY === 0) sentAtMs[sent / SAMPLE_EVERY] = performance.now();
    if (payload === 'number') {
      worker.postMessage(sent++);
      return;
    }
    const frame = new Uint8Array(ROUND_TRIP_FRAME_BYTES);
    new DataView(frame.buffer).setUint32(0, sent++, true);
    worker.postMessage(frame);
  };
  const startMs = performance.now();
  await new Promise<void>((resolve) => {
    worker.on('message', (message: number | Uint8Array) => {
      const sequence = typeof message === 'number' ? message : new DataView(message.buffer).getUint32(0, true);
      if (sequence % SAMPLE_EVERY === 0) latenciesMs[sequence / SAMPLE_EVERY] = performance.now() - sentAtMs[sequence / SAMPLE_EVERY]!;
      if (++received === messages) resolve();
      else if (sent < messages) send();
    });
    while (sent < Math.min(inFlight, messages)) send();
  });
  const elapsedMs = performance.now() - startMs;
  await worker.terminate();
  return latencyRun(messages, messages * frameBytes * 2, elapsedMs, latenciesMs);
}

/** Distinct frames to send one way, each with its own ArrayBuffer (postMessage clones it whole). */
function makeFrames(minBytes: number, maxBytes: number, count: number, rng: SeededRng): Uint8Array[] {
  return Array.from({ length: count }, () => rng.bytes(minBytes + rng.int(maxBytes - minBytes + 1)));
}

async function mailboxOneWay(frames: Uint8Array[], messages: number, capacityBytes: number, publishEveryFrames: number): Promise<Run> {
  const requests = createMailbox(capacityBytes);
  const worker = await startWorker({ mode: 'mailbox-sink', requests });
  const producer = new MailboxProducer(requests);
  const done = once(worker, 'message');
  const startMs = performance.now();
  for (let i = 0; i < messages; ) {
    const frame = frames[i % frames.length]!;
    if (!producer.tryWrite(frame)) {
      if (!(await producer.waitForSpace(frame.length, 60_000))) throw new Error('sink stopped draining');
      continue;
    }
    if (++i % publishEveryFrames === 0) producer.publish();
  }
  producer.close();
  const [counts] = (await done) as [{ frames: number; bytes: number }];
  const elapsedMs = performance.now() - startMs;
  await worker.terminate();
  if (counts.frames !== messages) throw new Error(`sink saw ${counts.frames} of ${messages} frames`);
  return { messagesPerSec: (messages / elapsedMs) * 1000, bytesPerSec: (counts.bytes / elapsedMs) * 1000 };
}

async function postOneWay(frames: Uint8Array[], messages: number): Promise<Run> {
  const worker = await startWorker({ mode: 'post-sink' });
  const done = once(worker, 'message');
  const startMs = performance.now();
  for (let i = 0; i < messages; i++) worker.postMessage(frames[i % frames.length]);
  worker.postMessage('end');
  const [counts] = (await done) as [{ frames: number; bytes: number }];
  const elapsedMs = performance.now() - startMs;
  await worker.terminate();
  if (counts.frames !== messages) throw new Error(`sink saw ${counts.frames} of ${messages} messages`);
  return { messagesPerSec: (messages / elapsedMs) * 1000, bytesPerSec: (counts.bytes / elapsedMs) * 1000 };
}

function summarize(runs: Run[]): Summary {
  const summary: Summary = {
    messagesPerSec: median(runs.map((run) => run.messagesPerSec)),
    bytesPerSec: median(runs.map((run) => run.bytesPerSec)),
    roundsMessagesPerSec: runs.map((run) => Math.round(run.messagesPerSec)),
  };
  if (runs[0]?.p50Us !== undefined) {
    summary.p50Us = median(runs.map((run) => run.p50Us!));
    summary.p99Us = median(runs.map((run) => run.p99Us!));
  }
  return summary;
}

/** Runs every side `rounds` times, rotating which goes first, after one unreported warm-up. */
async function compare(rounds: number, mailbox: Side, peers: Record<string, Side>): Promise<Comparison> {
  const sides: [string, Side][] = [['mailbox', mailbox], ...Object.entries(peers)];
  for (const [, side] of sides) await side(true);
  const runs = new Map<string, Run[]>(sides.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < sides.length; i++) {
      const [name, side] = sides[(round + i) % sides.length]!;
      runs.get(name)!.push(await side(false));
    }
  }
  const mailboxRuns = runs.get('mailbox')!;
  const comparison: Comparison = { mailbox: summarize(mailboxRuns), peers: {}, ratios: {} };
  for (const name of Object.keys(peers)) {
    const peerRuns = runs.get(name)!;
    comparison.peers[name] = summarize(peerRuns);
    comparison.ratios[name] = median(mailboxRuns.map((run, i) => run.messagesPerSec / peerRuns[i]!.messagesPerSec));
  }
  return comparison;
}

function resolveOptions(options: MailboxBenchOptions): MailboxBenchResult['options'] {
  return {
    rounds: Math.max(3, options.rounds ?? 3),
    inFlight: options.inFlight ?? 1000,
    mailboxRoundTrips: options.mailboxRoundTrips ?? 2_000_000,
    postRoundTrips: options.postRoundTrips ?? 300_000,
    mailboxSmallFrames: options.mailboxSmallFrames ?? 5_000_000,
    postSmallFrames: options.postSmallFrames ?? 300_000,
    mailboxLargeFrames: options.mailboxLargeFrames ?? 300_000,
    postLargeFrames: options.postLargeFrames ?? 100_000,
    largeFrameBytes: options.largeFrameBytes ?? 10 * 1024,
    capacityBytes: options.capacityBytes ?? limits.mailboxBytesDefault,
    publishEveryFrames: options.publishEveryFrames ?? 256,
  };
}

function scaled(count: number, warmUp: boolean): number {
  return warmUp ? Math.max(1, Math.floor(count / 10)) : count;
}

export async function runMailboxBench(options: MailboxBenchOptions = {}): Promise<MailboxBenchResult> {
  const o = resolveOptions(options);
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rng = new SeededRng(1);
  const cpus = os.cpus();
  const machine = { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length };
  print(`mailbox bench · ${machine.cpu} × ${machine.cores} · node ${process.version} · ${o.rounds} rounds, medians`);
  const smallFrames = makeFrames(16, 64, 4096, rng);
  const largeFrames = makeFrames(o.largeFrameBytes, o.largeFrameBytes, 64, rng);
  const roundtrip = await compare(
    o.rounds,
    (w) => mailboxRoundTrips(scaled(o.mailboxRoundTrips, w), o.inFlight, o.capacityBytes),
    {
      'postMessage 16 B': (w) => postRoundTrips(scaled(o.postRoundTrips, w), o.inFlight, 'bytes'),
      'postMessage number': (w) => postRoundTrips(scaled(o.postRoundTrips, w), o.inFlight, 'number'),
    },
  );
  printComparison(print, `round trips, 16 B, ${o.inFlight} in flight`, roundtrip);
  const small = await compare(
    o.rounds,
    (w) => mailboxOneWay(smallFrames, scaled(o.mailboxSmallFrames, w), o.capacityBytes, o.publishEveryFrames),
    { postMessage: (w) => postOneWay(smallFrames, scaled(o.postSmallFrames, w)) },
  );
  printComparison(print, `one way, 16–64 B, publish every ${o.publishEveryFrames}`, small);
  const large = await compare(
    o.rounds,
    (w) => mailboxOneWay(largeFrames, scaled(o.mailboxLargeFrames, w), o.capacityBytes, o.publishEveryFrames),
    { postMessage: (w) => postOneWay(largeFrames, scaled(o.postLargeFrames, w)) },
  );
  printComparison(print, `one way, ${o.largeFrameBytes} B`, large);
  const result: MailboxBenchResult = {
    bench: 'mailbox', time: new Date().toISOString(), machine, node: process.version, options: o, roundtrip, small, large,
  };
  const resultsPath = options.resultsPath === undefined ? join(process.cwd(), 'perf', 'results', 'mailbox.jsonl') : options.resultsPath;
  if (resultsPath !== null) {
    mkdirSync(dirname(resultsPath), { recursive: true });
    appendFileSync(resultsPath, `${JSON.stringify(result)}\n`);
    print(`appended to ${resultsPath}`);
  }
  return result;
}

function formatRate(perSec: number): string {
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)}M/s`;
  return `${(perSec / 1e3).toFixed(0)}k/s`;
}

function formatSide(name: string, summary: Summary): string {
  const latency = summary.p50Us === undefined ? '' : ` · p50 ${summary.p50Us.toFixed(0)} µs p99 ${summary.p99Us!.toFixed(0)} µs`;
  const rounds = summary.roundsMessagesPerSec.map(formatRate).join(', ');
  return `  ${name.padEnd(18)} ${formatRate(summary.messagesPerSec).padStart(9)} msgs · ${(summary.bytesPerSec / 1e9).toFixed(2)} GB/s${latency} · rounds [${rounds}]`;
}

function printComparison(print: (line: string) => void, title: string, comparison: Comparison): void {
  print(title);
  print(formatSide('mailbox', comparison.mailbox));
  for (const [name, summary] of Object.entries(comparison.peers)) {
    print(formatSide(name, summary));
    print(`    ratio mailbox / ${name} (median of rounds): ${comparison.ratios[name]!.toFixed(1)}×`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runMailboxBench(process.argv.includes('--no-save') ? { resultsPath: null } : {});
}
