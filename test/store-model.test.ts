/**
 * Model-based test of the whole embedded Store: several shards on real worker threads,
 * random get / put-with-context / blind put / stale-context put / delete / reopen / shard
 * crash sequences, checked against a model that tracks siblings exactly.
 *
 * The model follows dotted-version-vector semantics for one coordinator: every write is an
 * event with an id; a context is the set of events its get saw; a write with context C keeps
 * the current siblings whose events C did not see and adds itself (a delete adds an invisible
 * tombstone). A blind write has the empty context. Randomized: the seed is printed.
 */
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { openStore, type Store } from '../lib/index.js';
import type { EmbeddedStore } from '../lib/store/store.js';

const dec = new TextDecoder();
const KEYS = 6;

interface Sibling {
  id: number;
  value: string | undefined;
}
interface SavedContext {
  bytes: Uint8Array;
  seen: Set<number>;
}
interface Model {
  keys: Map<number, { siblings: Sibling[]; history: Set<number> }>;
  contexts: Map<number, SavedContext[]>;
  nextId: number;
}
interface Real {
  store: Store;
  dir: string;
}

function slot(m: Model, k: number): { siblings: Sibling[]; history: Set<number> } {
  let s = m.keys.get(k);
  if (!s) m.keys.set(k, (s = { siblings: [], history: new Set() }));
  return s;
}

function applyWrite(m: Model, k: number, value: string | undefined, seen: Set<number>): void {
  const s = slot(m, k);
  const id = m.nextId++;
  s.siblings = [...s.siblings.filter((x) => !seen.has(x.id)), { id, value }];
  s.history.add(id);
}

async function checkGet(m: Model, r: Real, k: number): Promise<SavedContext> {
  const got = await r.store.get(`key-${k}`);
  const s = slot(m, k);
  const want = s.siblings.filter((x) => x.value !== undefined).map((x) => x.value!).sort();
  const have = got.values.map((v) => dec.decode(v)).sort();
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    throw new Error(`key-${k}: store has ${JSON.stringify(have)}, model has ${JSON.stringify(want)}`);
  }
  if (got.found !== want.length > 0) throw new Error(`key-${k}: found=${got.found} but model has ${want.length} values`);
  const saved = { bytes: got.context, seen: new Set(s.history) };
  m.contexts.set(k, [...(m.contexts.get(k) ?? []).slice(-3), saved]);
  return saved;
}

type Cmd = fc.AsyncCommand<Model, Real>;
const always = (): boolean => true;

const get = (k: number): Cmd => ({ check: always, run: async (m, r) => void (await checkGet(m, r, k)), toString: () => `get(${k})` });

const readModifyWrite = (k: number, v: string): Cmd => ({
  check: always,
  run: async (m, r) => {
    const ctx = await checkGet(m, r, k);
    await r.store.put(`key-${k}`, v, { context: ctx.bytes });
    applyWrite(m, k, v, ctx.seen);
  },
  toString: () => `rmw(${k}, ${v})`,
});

const blindPut = (k: number, v: string): Cmd => ({
  check: always,
  run: async (m, r) => {
    await r.store.put(`key-${k}`, v);
    applyWrite(m, k, v, new Set());
  },
  toString: () => `blindPut(${k}, ${v})`,
});

const stalePut = (k: number, v: string, which: number): Cmd => ({
  check: (m) => (m.contexts.get(k)?.length ?? 0) > 0,
  run: async (m, r) => {
    const saved = m.contexts.get(k)!;
    const ctx = saved[which % saved.length]!;
    await r.store.put(`key-${k}`, v, { context: ctx.bytes });
    applyWrite(m, k, v, ctx.seen);
  },
  toString: () => `stalePut(${k}, ${v}, #${which})`,
});

const deleteWithContext = (k: number): Cmd => ({
  check: always,
  run: async (m, r) => {
    const ctx = await checkGet(m, r, k);
    await r.store.delete(`key-${k}`, { context: ctx.bytes });
    applyWrite(m, k, undefined, ctx.seen);
  },
  toString: () => `delete(${k})`,
});

const reopen: Cmd = {
  check: always,
  run: async (m, r) => {
    await r.store.close();
    r.store = await openStore({ dir: r.dir, shards: 2 });
    for (let k = 0; k < KEYS; k++) await checkGet(m, r, k);
  },
  toString: () => 'close+reopen',
};

const crashShard = (shard: number): Cmd => ({
  check: always,
  run: async (m, r) => {
    const s = r.store as unknown as EmbeddedStore;
    await s.crashShardForTest(shard).catch(() => undefined);
    await s.shardReady(shard);
    for (let k = 0; k < KEYS; k++) await checkGet(m, r, k);
  },
  toString: () => `crashShard(${shard})`,
});

const keyArb = fc.integer({ min: 0, max: KEYS - 1 });
const valueArb = fc.string({ minLength: 1, maxLength: 12 });
const commands = [
  keyArb.map(get),
  fc.tuple(keyArb, valueArb).map(([k, v]) => readModifyWrite(k, v)),
  fc.tuple(keyArb, valueArb).map(([k, v]) => blindPut(k, v)),
  fc.tuple(keyArb, valueArb, fc.nat()).map(([k, v, w]) => stalePut(k, v, w)),
  keyArb.map(deleteWithContext),
  fc.constant(reopen),
  fc.integer({ min: 0, max: 1 }).map(crashShard),
];

t.test('the Store keeps exactly the siblings a causal model predicts, across reopens and shard crashes', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (cmds) => {
      runs++;
      const dir = mkdtempSync(join(tmpdir(), 'ringkv-store-model-'));
      const real: Real = { store: await openStore({ dir, shards: 2 }), dir };
      try {
        await fc.asyncModelRun(() => ({ model: { keys: new Map(), contexts: new Map(), nextId: 1 }, real }), cmds);
      } finally {
        await real.store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { seed, numRuns: Number(process.env.RINGKV_STORE_MODEL_RUNS ?? 12), endOnFailure: true },
  );
  t.ok(runs > 0, `ran ${runs} command sequences`);
});
