/**
 * The shard's presence filter (lib/shard/presence-filter.ts): a "no" from the main thread is
 * exact. The filter itself (bits, count, capacity, states); the engine telling it every key
 * it takes and listing every key it holds; a replica store that answers reads of keys no
 * shard holds without asking them, but never for a key it holds, across restarts (the scan),
 * writes in flight and random histories; and a RESP pipeline that writes a key and reads it
 * back in one packet.
 */

import t, { type Test } from 'tap';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { limits } from '../lib/base/limits.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { PresenceFilter, PresenceState } from '../lib/shard/presence-filter.js';
import { Engine } from '../lib/storage/engine.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';
import { openReplicaStore } from '../lib/store/index.js';
import { startRespNode } from './fixtures/resp-node.js';

const enc = new TextEncoder();
const b = (s: string): Uint8Array => enc.encode(s);

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-presence-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('the filter: "maybe" until ready, exact "no" after, a count of distinct keys, off past capacity', (t) => {
  const filter = PresenceFilter.create(0);
  t.equal(filter.capacity, limits.presenceKeysMin);
  t.equal(filter.state, PresenceState.building);
  filter.add(tokenOf(b('present')));
  t.equal(filter.mayHold(tokenOf(b('absent'))), true, 'building: every answer is maybe');
  filter.markReady();
  t.equal(filter.mayHold(tokenOf(b('present'))), true);
  t.equal(filter.mayHold(tokenOf(b('absent'))), false);
  filter.add(tokenOf(b('present')));
  t.equal(filter.count, 1, 'adding a key again counts nothing');

  const seen = PresenceFilter.attach(filter.buffer);
  t.equal(seen.mayHold(tokenOf(b('absent'))), false, 'the other side reads the same memory');
  filter.add(tokenOf(b('absent')));
  t.equal(seen.mayHold(tokenOf(b('absent'))), true);

  let falseMaybes = 0;
  for (let i = 0; i < 100_000; i++) filter.add(tokenOf(b(`k${i}`)));
  for (let i = 0; i < 100_000; i++) if (filter.mayHold(tokenOf(b(`x${i}`)))) falseMaybes++;
  for (let i = 0; i < 100_000; i++) if (!filter.mayHold(tokenOf(b(`k${i}`)))) return t.fail(`k${i} added but answered no`);
  t.ok(falseMaybes < 1_000, `${falseMaybes} false maybes in 100,000 at a tenth of capacity`);

  const big = PresenceFilter.create(limits.presenceKeysMax + 1);
  t.equal(big.state, PresenceState.off, 'more keys than it can hold: off from the start');
  big.markReady();
  t.equal(big.mayHold(tokenOf(b('absent'))), true);
  t.end();
});

t.test('the filter turns itself off past its capacity, judged by the bits set', (t) => {
  const filter = PresenceFilter.create(0);
  filter.markReady();
  let added = 0;
  for (let i = 0; filter.state === PresenceState.ready && i < 10 * filter.capacity; i++, added++) filter.add(Math.imul(i, 0x9e3779b1));
  t.equal(filter.state, PresenceState.off);
  t.ok(added > 0.9 * filter.capacity && added < 1.5 * filter.capacity, `off after ${added} keys, capacity ${filter.capacity}`);
  t.equal(filter.mayHold(12345), true);
  t.end();
});

t.test('the engine tells every key it takes, before the write resolves, and lists every key it holds', async (t) => {
  const fs = new MemoryFileSystem();
  const open = (): Engine => Engine.open({ fs, dir: '/e', sync: 'none', partitionBits: 4, memtableBytes: limits.memtableBytesMin });
  let engine = open();
  const told = new Set<number>();
  engine.keyListener = (token) => told.add(token | 0);
  for (let i = 0; i < 500; i++) {
    const key = b(`key-${i}`);
    await engine.put(key, new Uint8Array(100));
    if (!told.has(tokenOf(key) | 0)) return t.fail(`key-${i} not told by the time its write resolved`);
  }
  await engine.delete(b('key-7'));
  await engine.flush();
  t.ok(engine.keyEstimate() >= 500);
  await engine.close();

  engine = open(); // tables and a replayed commit log
  const listed = new Set<number>();
  for (let p = 0; p < 16; p++) engine.forEachToken(p, (token) => listed.add(token | 0));
  for (let i = 0; i < 500; i++) {
    if (i === 7) continue;
    if (!listed.has(tokenOf(b(`key-${i}`)) | 0)) return t.fail(`key-${i} not listed`);
  }
  t.equal(listed.has(tokenOf(b('key-7')) | 0), false, 'a deleted key (an engine tombstone) is not listed');
  const partition = partitionOfToken(tokenOf(b('key-3')), 4);
  const one: number[] = [];
  engine.forEachToken(partition, (token) => one.push(token));
  t.ok(one.every((token) => partitionOfToken(token >>> 0, 4) === partition), 'one partition at a time');
  await engine.close();
  t.end();
});

/** Waits until every shard of the store has scanned its engine (its filter is ready): keys nobody writes, on every shard, are known absent. */
async function untilReady(store: { knownAbsent(key: Uint8Array): boolean }): Promise<void> {
  const probes = Array.from({ length: 32 }, (_, i) => b(`a key nobody writes ${i}`));
  for (let i = 0; i < 600 && !probes.every((probe) => store.knownAbsent(probe)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}

t.test('a replica store answers "none" for keys no shard holds, and never for a key one holds, across a restart', async (t) => {
  const dir = tempDir(t);
  const options = { dir, shards: 2, partitionBits: 6, actor: 'node-a', sync: 'none' as const, rowCacheBytes: 64 * 1024 };
  let store = await openReplicaStore(options);
  const rows = (): { knownAbsent(key: Uint8Array): boolean } => store.rowCache!;
  await untilReady(rows());
  t.equal(rows().knownAbsent(b('never')), true, 'a fresh store knows it holds nothing');
  for (let i = 0; i < 2_000; i++) await store.coordinateWrite(b(`k${i}`), b(`v${i}`), undefined);
  for (let i = 0; i < 2_000; i++) if (rows().knownAbsent(b(`k${i}`))) return t.fail(`k${i} written, then called absent`);
  await store.close();

  store = await openReplicaStore(options); // the filters are rebuilt by a scan of each engine
  await untilReady(rows());
  let absentAnswers = 0;
  for (let i = 0; i < 2_000; i++) {
    if (rows().knownAbsent(b(`k${i}`))) return t.fail(`k${i} held, called absent after the restart`);
    if ((await store.readObject(b(`k${i}`))) === undefined) return t.fail(`k${i} read as absent`);
  }
  for (let i = 0; i < 2_000; i++) if (rows().knownAbsent(b(`never-${i}`))) absentAnswers++;
  t.ok(absentAnswers > 1_900, `${absentAnswers} of 2,000 unwritten keys answered without a shard`);
  t.equal(await store.readObject(b('never-1')), undefined);
  await store.close();
  t.end();
});

t.test('randomized: overlapping writes and reads through the store never read a written key as absent', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED=${seed} repeats this run)`);
  const rng = new SeededRng(seed);
  const store = await openReplicaStore({ dir: tempDir(t), shards: 2, partitionBits: 6, actor: 'node-a', sync: 'none', rowCacheBytes: 16 * 1024 });
  t.teardown(() => store.close());
  await untilReady(store.rowCache!);
  const acknowledged = new Set<string>();
  for (let round = 0; round < 60; round++) {
    const work: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const name = `key-${rng.int(400)}`;
      if (rng.int(3) === 0) {
        work.push(store.coordinateWrite(b(name), b(`${round}-${i}`), undefined, { overwrite: true }).then(() => void acknowledged.add(name)));
      } else {
        const wasAcknowledged = acknowledged.has(name);
        work.push(
          store.readObject(b(name)).then((object) => {
            if (wasAcknowledged && object === undefined) throw new Error(`round ${round}: ${name} was written, read as absent`);
          }),
        );
      }
    }
    await Promise.all(work);
  }
  t.ok(acknowledged.size > 100, `${acknowledged.size} keys written`);
  t.end();
});

t.test('RESP: a SET and a GET of a new key in one packet: the GET sees the SET', { timeout: 120_000 }, async (t) => {
  const { port, close } = await startRespNode();
  t.teardown(close);
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const command = (...args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  // Wait for the filters to be ready: a GET of an unwritten key answered at once is then nil too, either way.
  await new Promise((resolve) => setTimeout(resolve, 500));
  let expected = '';
  let packet = '';
  for (let i = 0; i < 200; i++) {
    packet += command('GET', `fresh-${i}`) + command('SET', `fresh-${i}`, `v${i}`) + command('GET', `fresh-${i}`) + command('GET', `fresh-${i + 1000}`);
    expected += `$-1\r\n+OK\r\n$${`v${i}`.length}\r\nv${i}\r\n$-1\r\n`;
  }
  socket.write(packet);
  const deadline = Date.now() + 30_000;
  while (received.length < expected.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal(received, expected, 'every GET after the SET in the same packet sees its value');
  t.end();
});
