/**
 * Model-based test of the storage engine (RELIABILITY.md C12): random sequences of
 * put/get/delete/batch/flush/compact/crash/reopen against a Map, on the crash-simulating
 * file system. After every crash every acknowledged write is present and nothing that was
 * never acknowledged appears; a write interrupted mid-commit is indeterminate and may go
 * either way, but the recovered value must be the old one or the new one, never anything else.
 * Values of 1 KiB and more go to the value log (key-value separation), so flushes, compactions,
 * value-log GC and crashes during GC are all part of the sequences.
 */
import t from 'tap';
import fc from 'fast-check';
import { SeededRng, seedFromEnvironment } from '../lib/base/index.js';
import { Engine } from '../lib/storage/engine.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';
import { ProcessFileSystem } from './fixtures/process-file-system.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const KEYS = 40;

interface Model {
  values: Map<number, string>;
}

class Real {
  disk = new MemoryFileSystem();
  process = new ProcessFileSystem(this.disk);
  db: Engine;
  rng: SeededRng;

  constructor(seed: number) {
    this.rng = new SeededRng(seed);
    this.db = this.open();
  }

  open(): Engine {
    this.process = new ProcessFileSystem(this.disk);
    return Engine.open({
      fs: this.process,
      dir: '/db',
      memtableBytes: 64 * 1024,
      targetTableBytes: 16 * 1024,
      level1BytesMax: 64 * 1024,
      level0CompactionTrigger: 2,
    });
  }

  crash(): void {
    this.process.kill();
    this.disk.crash(this.rng);
    this.db = this.open();
  }
}

const key = (i: number): Uint8Array => enc.encode(`k${i}`);
const valueOf = (tag: string, size: number): string => tag.padEnd(size, '*');

function checkAll(model: Model, real: Real): void {
  for (let i = 0; i < KEYS; i++) {
    const got = real.db.get(key(i));
    const want = model.values.get(i);
    const gotText = got === undefined ? undefined : dec.decode(got);
    if (gotText !== want) throw new Error(`key k${i}: engine has ${gotText?.slice(0, 20)}, model has ${want?.slice(0, 20)}`);
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;
let counter = 0;

class Put implements Cmd {
  constructor(readonly k: number, readonly size: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const v = valueOf(`v${counter++}`, this.size);
    await r.db.put(key(this.k), enc.encode(v));
    m.values.set(this.k, v);
  }
  toString = (): string => `put(k${this.k}, ${this.size}B)`;
}

class Delete implements Cmd {
  constructor(readonly k: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.db.delete(key(this.k));
    m.values.delete(this.k);
  }
  toString = (): string => `delete(k${this.k})`;
}

class Batch implements Cmd {
  constructor(readonly ops: { k: number; del: boolean; size: number }[]) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const applied: [number, string | undefined][] = this.ops.map((o) => [o.k, o.del ? undefined : valueOf(`b${counter++}`, o.size)]);
    await r.db.write(
      applied.map(([k, v]) => (v === undefined ? { type: 'delete' as const, key: key(k) } : { type: 'put' as const, key: key(k), value: enc.encode(v) })),
    );
    for (const [k, v] of applied) {
      if (v === undefined) m.values.delete(k);
      else m.values.set(k, v);
    }
  }
  toString = (): string => `batch(${this.ops.length})`;
}

class Get implements Cmd {
  constructor(readonly k: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const got = r.db.get(key(this.k));
    const want = m.values.get(this.k);
    if ((got === undefined ? undefined : dec.decode(got)) !== want) throw new Error(`get(k${this.k}) disagrees with the model`);
  }
  toString = (): string => `get(k${this.k})`;
}

class Flush implements Cmd {
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.db.flush();
    checkAll(m, r);
  }
  toString = (): string => 'flush';
}

class Compact implements Cmd {
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.db.compact();
    checkAll(m, r);
  }
  toString = (): string => 'compact';
}

class Reopen implements Cmd {
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.db.close();
    r.db = r.open();
    checkAll(m, r);
  }
  toString = (): string => 'close+reopen';
}

class Crash implements Cmd {
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.crash();
    checkAll(m, r);
  }
  toString = (): string => 'crash';
}

/** Starts writes, crashes the file system after `step` operations, then recovers. */
class CrashDuringWrites implements Cmd {
  constructor(readonly keys: number[], readonly step: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const attempts = this.keys.map((k) => ({ k, v: valueOf(`c${counter++}`, 200), old: m.values.get(k) }));
    r.disk.failAfter(this.step);
    const outcomes = await Promise.allSettled(attempts.map((a) => r.db.put(key(a.k), enc.encode(a.v))));
    r.crash();
    // Later attempts on the same key win over earlier ones; check the last attempt per key.
    const last = new Map<number, { acked: boolean; candidates: (string | undefined)[] }>();
    attempts.forEach((a, i) => {
      const acked = outcomes[i]!.status === 'fulfilled';
      const prior = last.get(a.k);
      const candidates = acked ? [a.v] : [...(prior?.candidates ?? [a.old]), a.v];
      last.set(a.k, { acked, candidates: acked ? [a.v] : candidates });
    });
    for (const [k, { candidates }] of last) {
      const got = r.db.get(key(k));
      const text = got === undefined ? undefined : dec.decode(got);
      if (!candidates.includes(text)) throw new Error(`k${k} recovered to a value never written there`);
      if (text === undefined) m.values.delete(k);
      else m.values.set(k, text);
    }
    checkAll(m, r);
  }
  toString = (): string => `crashDuringWrites(${this.keys.join(',')} @${this.step})`;
}

/** Value-log GC now (values of 1 KiB and more live in the value log). */
class CollectValueLog implements Cmd {
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.db.flush();
    await r.db.collectValueLog();
    checkAll(m, r);
  }
  toString = (): string => 'collectValueLog';
}

/** Value-log GC with the file system crashing after `step` operations, then recovery. */
class CrashDuringGc implements Cmd {
  constructor(readonly step: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.db.flush();
    r.disk.failAfter(this.step);
    await r.db.collectValueLog().catch(() => undefined);
    r.crash();
    checkAll(m, r);
  }
  toString = (): string => `crashDuringGc(@${this.step})`;
}

const keyArb = fc.integer({ min: 0, max: KEYS - 1 });
const sizeArb = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 500, max: 3000 }));
const commands = [
  fc.tuple(keyArb, sizeArb).map(([k, s]) => new Put(k, s)),
  fc.tuple(keyArb, sizeArb).map(([k, s]) => new Put(k, s)),
  keyArb.map((k) => new Delete(k)),
  fc.array(fc.record({ k: keyArb, del: fc.boolean(), size: sizeArb }), { minLength: 1, maxLength: 20 }).map((ops) => new Batch(ops)),
  keyArb.map((k) => new Get(k)),
  fc.constant(new Flush()),
  fc.constant(new Compact()),
  fc.constant(new Reopen()),
  fc.constant(new Crash()),
  fc.constant(new CollectValueLog()),
  fc.integer({ min: 1, max: 20 }).map((step) => new CrashDuringGc(step)),
  fc.tuple(fc.array(keyArb, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 12 })).map(([ks, step]) => new CrashDuringWrites(ks, step)),
];

t.test('the engine behaves like a Map through random operations and crashes', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 60 }), fc.integer(), async (cmds, rngSeed) => {
      runs++;
      const real = new Real(rngSeed);
      const model: Model = { values: new Map() };
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        // Bulk: push the engine through several flushes and compactions, then crash once more.
        for (let i = 0; i < 300; i++) await new Put(i % KEYS, 1000).run(model, real);
        await new Crash().run(model, real);
      } finally {
        real.process.kill();
      }
    }),
    { seed, numRuns: Number(process.env.RINGKV_MODEL_RUNS ?? 60), endOnFailure: true },
  );
  t.ok(runs > 0, `ran ${runs} command sequences`);
});
