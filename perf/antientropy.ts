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
import { Buffer } from 'node:buffer';
import { tokenOf } from '../lib/base/hash.js';
import { SeededRng } from '../lib/base/rng.js';
import { Exchange, ExchangeResponder, keyId, objectHashOf, PartitionTree, type LeafEntry, type ObjectHash, type ResponderAction } from '../lib/antientropy/index.js';
import { keyBytes, printMachine, recordResult } from './harness.js';

interface Entry {
  readonly key: Uint8Array;
  readonly token: number;
  object: Uint8Array;
  hash: ObjectHash;
}

class Replica {
  readonly tree: PartitionTree;
  readonly responder: ExchangeResponder;
  readonly leaves = new Map<number, Map<string, Entry>>();

  constructor(leafBits: number) {
    this.tree = new PartitionTree({ partition: 0, partitionBits: 0, leafBits });
    this.responder = new ExchangeResponder({ treeOf: () => this.tree });
  }

  load(entries: readonly Entry[]): void {
    for (const entry of entries) this.#set(entry.key, { ...entry });
  }

  #set(key: Uint8Array, entry: Entry): void {
    const leaf = this.tree.leafOfToken(entry.token);
    let map = this.leaves.get(leaf);
    if (map === undefined) this.leaves.set(leaf, (map = new Map()));
    const old = map.get(keyId(key));
    this.tree.update(key, old?.hash, entry.hash);
    map.set(keyId(key), entry);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.leaves.get(this.tree.leafOfToken(tokenOf(key)))?.get(keyId(key))?.object;
  }

  /** The synthetic join: the bytewise larger object wins on both sides. */
  merge(key: Uint8Array, object: Uint8Array): void {
    const local = this.get(key);
    if (local === undefined || Buffer.compare(local, object) < 0) this.replace(key, object);
  }

  replace(key: Uint8Array, object: Uint8Array): void {
    this.#set(key, { key, token: tokenOf(key), object, hash: objectHashOf(object) });
  }

  list(leaves: readonly number[]): LeafEntry[] {
    const out: LeafEntry[] = [];
    for (const leaf of leaves) {
      const entries = [...(this.leaves.get(leaf)?.values() ?? [])].sort((x, y) => x.token - y.token || Buffer.compare(x.key, y.key));
      for (const e of entries) out.push({ key: e.key, objectHash: e.hash });
    }
    return out;
  }

  answer(body: unknown): unknown[] {
    const replies: unknown[] = [];
    const reply = (action: ResponderAction): void => {
      if (action.type === 'reply') replies.push(action.message);
    };
    for (const action of this.responder.onRequest('a', body)) {
      if (action.type === 'merge-local') this.merge(action.key, action.object);
      else if (action.type === 'list-local') reply(this.responder.listReply(action.request, this.list(action.request.leaves)));
      else if (action.type === 'read-local') reply(this.responder.fetchReply(action.request, action.request.keys.map((k) => this.get(k))));
      else reply(action);
    }
    return replies;
  }
}

function exchange(a: Replica, b: Replica): { bytes: number; requests: number; keys: number; ms: number } {
  const started = performance.now();
  const x = new Exchange({ exchangeId: 1, peer: 'b', tree: a.tree });
  let actions = x.start(0);
  while (!x.done) {
    const next = [];
    for (const action of actions) {
      if (action.type === 'send') for (const reply of b.answer(action.message)) next.push(...x.onReply(reply, 0));
      else if (action.type === 'list-local') next.push(...x.onLocalList(a.list(action.leaves), action.leaves.length, 0));
      else if (action.type === 'read-local') next.push(...x.onLocalRead(action.keys.map((k) => a.get(k)), 0));
      else if (action.type === 'merge-local') a.merge(action.key, action.object);
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
  const a = new Replica(leafBits);
  const b = new Replica(leafBits);
  a.load(entries);
  b.load(entries);
  for (let d = 0; d < differing; d++) b.replace(entries[rng.int(keyCount)]!.key, rng.bytes(138));
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
