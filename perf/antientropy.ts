/**
 * Merkle anti-entropy traffic (PERF.md "anti-entropy: 1 differing key among 1M": < 100 KB,
 * < 5 s; RELIABILITY.md L5). Two in-memory replicas of ONE partition holding `--keys` keys
 * (default 1M, 15-byte keys, 138-byte objects: one 100-byte value with its version vector)
 * differ in 1, 1,000 and 100,000 keys; one exchange runs from a to b and the run prints the
 * estimated bytes moved (exchange-message.ts `messageBytes`), requests, and wall time of the
 * exchange itself (pure logic + in-memory listings; no store, no network). Also prints the
 * cost of building a tree from a scan (object hash + insert per key).
 *
 *   npx tsc -p tsconfig.json && node build/perf/antientropy.js [--keys 1000000] [--leaf-bits 12]
 */
import { tokenOf } from '../lib/base/hash.js';
import { SeededRng } from '../lib/base/rng.js';
import { Exchange, objectHashOf, PartitionTree } from '../lib/antientropy/index.js';
import { keyBytes, printMachine, recordResult } from './harness.js';
import { largerBytesMerge, Replica, type Entry } from '../test/fixtures/ae-replica.js';

function exchange(a: Replica, b: Replica): { bytes: number; requests: number; keys: number; ms: number } {
  const started = performance.now();
  const x = new Exchange({ exchangeId: 1, peer: 'b', tree: a.tree });
  let actions = x.start(0);
  while (!x.done) {
    const next = [];
    for (const action of actions) {
      if (action.type === 'send') for (const reply of b.answer('a', action.message)) next.push(...x.onReply(reply, 0));
      else if (action.type === 'list-local') next.push(...x.onLocalList(a.list(action.leaves), action.leaves.length, 0));
      else if (action.type === 'read-local') next.push(...x.onLocalRead(action.keys.map((k) => a.get(k)), 0));
      else if (action.type === 'merge-local') a.mergeIn(action.key, action.object);
    }
    actions = next;
  }
  const result = x.result!;
  if (!result.ok) throw new Error(`exchange failed: ${result.message}`);
  const s = result.stats;
  return { bytes: s.bytesSent + s.bytesReceived, requests: s.messagesSent, keys: s.keysDiffering, ms: performance.now() - started };
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const keyCount = flag('keys', 1_000_000);
const leafBits = flag('leaf-bits', 12);
printMachine();
const rng = new SeededRng(42);
const entries: Entry[] = [];
for (let i = 0; i < keyCount; i++) {
  const key = keyBytes(i);
  entries.push({ key, token: tokenOf(key), object: rng.bytes(138), hash: new Uint8Array(0) });
}
let started = performance.now();
for (const entry of entries) entry.hash = objectHashOf(entry.object);
const probe = new PartitionTree({ partition: 0, partitionBits: 0, leafBits });
for (const entry of entries) probe.insert(entry.key, entry.hash);
const buildMs = performance.now() - started;
console.log(`tree build: ${keyCount} keys (object hash + insert) in ${buildMs.toFixed(0)} ms, ${leafBits} leaf bits`);
const rows: Record<string, unknown>[] = [];
for (const differing of [1, 1_000, 100_000]) {
  const shape = { partition: 0, partitionBits: 0, leafBits };
  const a = new Replica('a', shape, largerBytesMerge);
  const b = new Replica('b', shape, largerBytesMerge);
  a.load(entries);
  b.load(entries);
  for (let d = 0; d < differing; d++) b.put(entries[rng.int(keyCount)]!.key, rng.bytes(138));
  started = performance.now();
  const run = exchange(a, b);
  const again = exchange(a, b);
  const row = { keys: keyCount, differing, keysDiffering: run.keys, bytes: run.bytes, requests: run.requests, exchangeMs: Math.round(run.ms), againBytes: again.bytes };
  rows.push(row);
  console.log(
    `${keyCount} keys, ${String(differing).padStart(6)} differing: ${run.bytes.toLocaleString('en')} bytes (${(run.bytes / Math.max(1, run.keys)).toFixed(0)} per key) ` +
      `in ${run.requests} requests, ${run.ms.toFixed(0)} ms; second exchange ${again.bytes} bytes`,
  );
}
recordResult('antientropy', { leafBits, buildMs: Math.round(buildMs), rows });
