/**
 * The handoff's transfer loops (lib/supervisor/handoff-transfers.ts) against fake peers, on a
 * ManualClock that moves only when the pacing sleeps: pulls and pushes resume from their last
 * page, every step takes from the token bucket (so the time slept follows the bytes and step
 * costs moved), merges of a page are bounded, and catch-up exchanges with former replicas
 * fall back to a pull.
 */

import t from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { limits } from '../lib/base/limits.js';
import { silentLogger } from '../lib/base/log.js';
import type { Ring } from '../lib/ring/index.js';
import { pageCrc } from '../lib/supervisor/handoff-page.js';
import { HandoffTransfers, type HandoffTransfersOptions } from '../lib/supervisor/handoff-transfers.js';

const entryOf = (i: number, objectBytes: number): { key: Uint8Array; object: Uint8Array } => ({ key: Buffer.from(`key-${String(i).padStart(6, '0')}`), object: new Uint8Array(objectBytes).fill(i & 0xff) });

/** A source peer serving `count` entries of one partition as CRC-checked pages. */
function pageServer(count: number, objectBytes: number): (body: { afterKey?: Uint8Array; limit: number }) => object {
  const all = Array.from({ length: count }, (_, i) => entryOf(i, objectBytes));
  return (body) => {
    const after = body.afterKey ? Buffer.from(body.afterKey).toString() : '';
    const rest = all.filter((e) => Buffer.from(e.key).toString() > after);
    const entries = rest.slice(0, body.limit);
    const more = rest.length > entries.length;
    return { t: 'handoff-page-reply', entries, crc: pageCrc(entries), ...(more ? { nextAfterKey: entries[entries.length - 1]!.key } : {}) };
  };
}

interface Harness {
  clock: ManualClock;
  sleptMs: number;
  merged: Map<string, Uint8Array>;
  mergesInFlightMax: number;
  calls: string[];
  transfers: HandoffTransfers;
}

function harness(overrides: Partial<HandoffTransfersOptions> & { serve?: (to: string, body: Record<string, unknown>) => unknown } = {}): Harness {
  const clock = new ManualClock();
  const h: Harness = { clock, sleptMs: 0, merged: new Map(), mergesInFlightMax: 0, calls: [], transfers: undefined as unknown as HandoffTransfers };
  let inFlight = 0;
  const store = {
    mergeObject: async (key: Uint8Array, object: Uint8Array) => {
      inFlight++;
      h.mergesInFlightMax = Math.max(h.mergesInFlightMax, inFlight);
      await Promise.resolve();
      h.merged.set(Buffer.from(key).toString(), object);
      inFlight--;
    },
    scanPartition: async () => ({ entries: [] }),
  };
  h.transfers = new HandoffTransfers({
    selfId: 'self',
    store,
    clock,
    logger: silentLogger,
    call: async (to, body) => {
      h.calls.push(`${to}:${(body as { t: string }).t}`);
      return overrides.serve?.(to, body as Record<string, unknown>);
    },
    exchange: async () => ({ ok: true }),
    isUp: () => true,
    ring: () => undefined,
    sleep: async (ms) => {
      h.sleptMs += ms;
      clock.advance(ms);
    },
    ...overrides,
  });
  return h;
}

t.test('a pull merges every page, a few objects at a time, and is paced by bytes plus step costs', async (t) => {
  const serve = pageServer(1000, 1000);
  const bytesPerSecond = 1024 * 1024;
  const h = harness({ bytesPerSecond, serve: (_to, body) => serve(body as { limit: number }) });
  await h.transfers.run([{ partition: 3, direction: 'in', peers: ['a'] }]);
  t.equal(h.merged.size, 1000, 'every object merged');
  const [transfer] = h.transfers.list();
  t.match(transfer, { partition: 3, direction: 'in', peer: 'a', state: 'done', keys: 1000 });
  const pages = Math.ceil(1000 / limits.handoffPageEntries);
  t.equal(h.calls.length, pages, `${pages} pages`);
  t.ok(h.mergesInFlightMax > 1 && h.mergesInFlightMax <= limits.handoffMergesInFlight, `merges in flight ${h.mergesInFlightMax}, bounded`);
  // The last page's charge is still owed when the pull ends: it delays the next step, not this one.
  const lastPageBytes = (1000 - (pages - 1) * limits.handoffPageEntries) * (1000 + 10);
  const paidBytes = transfer!.bytes + (pages - 1) * limits.handoffStepCostBytes - limits.handoffBurstBytesDefault - lastPageBytes;
  const expectedMs = (paidBytes * 1000) / bytesPerSecond;
  t.ok(h.sleptMs >= expectedMs - 5 && h.sleptMs <= expectedMs + 5 * pages, `slept ${h.sleptMs.toFixed(0)} ms for ~${expectedMs.toFixed(0)} ms of budget`);
});

t.test('a failed page is retried from the last complete page, and a transfer with no up peer waits', async (t) => {
  const serve = pageServer(600, 10);
  let failures = 1;
  let down = true;
  const h = harness({
    isUp: (id) => !(down && id === 'b'),
    serve: (_to, body) => {
      if ((body as { afterKey?: unknown }).afterKey !== undefined && failures-- > 0) return { t: 'handoff-error', code: 'KV_UNAVAILABLE', message: 'busy' };
      return serve(body as { limit: number });
    },
    sleep: async (ms) => {
      h.sleptMs += ms;
      h.clock.advance(ms);
      down = false; // the peer comes back while we wait
    },
  });
  await h.transfers.run([{ partition: 1, direction: 'in', peers: ['b'] }]);
  t.equal(h.merged.size, 600, 'every object merged once the peer was up and the page retried');
  t.equal(h.calls.length, Math.ceil(600 / limits.handoffPageEntries) + 1, 'one page asked twice, none from the start again');
  t.equal(h.transfers.list()[0]!.keys, 600, 'keys counted once');
});

t.test('a push sends every object of the partition, and a refused object fails the attempt', async (t) => {
  const all = Array.from({ length: 300 }, (_, i) => ({ key: entryOf(i, 8).key, value: entryOf(i, 8).object }));
  let refuse = 1;
  const pushed = new Set<string>();
  const store = {
    mergeObject: async () => undefined,
    scanPartition: async (_partition: number, options: { afterKey?: Uint8Array; limit: number }) => {
      const after = options.afterKey ? Buffer.from(options.afterKey).toString() : '';
      const rest = all.filter((e) => Buffer.from(e.key).toString() > after);
      const entries = rest.slice(0, options.limit);
      return rest.length > entries.length ? { entries, nextAfterKey: entries[entries.length - 1]!.key } : { entries };
    },
  };
  const h = harness({
    store,
    serve: (_to, body) => {
      if (refuse-- > 0) return { t: 'replica-write-error' };
      pushed.add(Buffer.from(body.key as Uint8Array).toString());
      return { t: 'replica-write-reply' };
    },
  });
  await h.transfers.run([{ partition: 2, direction: 'out', peers: ['c'] }]);
  t.equal(pushed.size, 300, 'every object reached the target');
  t.match(h.transfers.list()[0], { direction: 'out', peer: 'c', state: 'done' });
  t.ok(h.sleptMs >= limits.handoffRetryDelayMs, 'the refused attempt was retried after a pause');
});

t.test('catch-up exchanges with current replicas, pulls from former ones, skips down peers and survives failures', async (t) => {
  const exchanged: string[] = [];
  const serve = pageServer(5, 10);
  const ring = { replicasOf: (partition: number) => (partition === 7 ? ['self', 'a'] : ['self', 'b']) } as unknown as Ring;
  const h = harness({
    ring: () => ring,
    isUp: (id) => id !== 'down',
    exchange: async (partition, peer) => {
      exchanged.push(`${partition}/${peer}`);
      if (peer === 'b') throw new Error('exchange broke');
      return { ok: partition !== 8 };
    },
    serve: (_to, body) => serve(body as { limit: number }),
  });
  await h.transfers.catchUp([
    { partition: 7, peers: ['self', 'a', 'x', 'down'] },
    { partition: 8, peers: ['b'] },
  ]);
  t.same(exchanged.sort(), ['7/a', '8/b'], 'an exchange with each up current replica, never with ourselves');
  t.same(h.calls, ['x:handoff-page'], 'a former replica is pulled from instead');
  t.equal(h.merged.size, 5, 'its objects merged');
});

t.test('with digests, catch-up exchanges only the partitions that differ, asking each current replica once', async (t) => {
  const exchanged: string[] = [];
  const asked: string[] = [];
  const ring = { replicasOf: (partition: number) => (partition < 10 ? ['self', 'a', 'b'] : ['self', 'a']) } as unknown as Ring;
  const h = harness({
    ring: () => ring,
    exchange: async (partition, peer) => {
      exchanged.push(`${partition}/${peer}`);
      return { ok: true };
    },
    matching: async (peer, partitions) => {
      asked.push(`${peer}:${partitions.join(',')}`);
      if (peer === 'b') throw new Error('digests broke');
      return new Set(partitions.filter((p) => p !== 3));
    },
  });
  await h.transfers.catchUp([
    { partition: 3, peers: ['a', 'b'] },
    { partition: 4, peers: ['a', 'b'] },
    { partition: 12, peers: ['a', 'b'] },
  ]);
  t.same(asked.sort(), ['a:3,4,12', 'b:3,4'], 'one digest request per current replica (b no longer replicates 12)');
  t.same(exchanged.sort(), ['3/a', '3/b', '4/b'], 'exchanges only where digests differ or could not be compared');
  t.same(h.calls, ['b:handoff-page'], 'the former replica of 12 is pulled from as before');
});

t.test('with digests, a pull whose source holds what this node holds is done without a page', async (t) => {
  const serve = pageServer(3, 10);
  const h = harness({
    matching: async (_peer, partitions) => new Set(partitions.filter((p) => p !== 2)),
    serve: (_to, body) => serve(body as { limit: number }),
  });
  await h.transfers.run([1, 2, 3].map((partition) => ({ partition, direction: 'in' as const, peers: ['a'] })));
  t.same(h.calls, ['a:handoff-page'], 'only partition 2 is pulled');
  t.ok(h.transfers.list().every((x) => x.state === 'done' && x.peer === 'a'), 'all three are done');
  const failing = harness({ matching: async () => Promise.reject(new Error('no digests')), serve: (_to, body) => serve(body as { limit: number }) });
  await failing.transfers.run([{ partition: 1, direction: 'in', peers: ['a'] }]);
  t.same(failing.calls, ['a:handoff-page'], 'digests that fail fall back to pulling');
});

t.test('each catch-up exchange takes its step cost from the bucket, and close stops the loops', async (t) => {
  const bytesPerSecond = 1024 * 1024;
  const ring = { replicasOf: () => ['self', 'a'] } as unknown as Ring;
  const h = harness({ bytesPerSecond, ring: () => ring });
  const exchanges = 100;
  await h.transfers.catchUp(Array.from({ length: exchanges }, (_, partition) => ({ partition, peers: ['a'] })));
  const expectedMs = ((exchanges * limits.handoffStepCostBytes - limits.handoffBurstBytesDefault) * 1000) / bytesPerSecond;
  t.ok(h.sleptMs >= expectedMs * 0.9, `${exchanges} exchanges slept ${h.sleptMs.toFixed(0)} ms (~${expectedMs.toFixed(0)} ms of step costs)`);

  h.transfers.close();
  const calls = h.calls.length;
  await h.transfers.run([{ partition: 5, direction: 'in', peers: ['a'] }]);
  await h.transfers.catchUp([{ partition: 5, peers: ['a'] }]);
  t.equal(h.calls.length, calls, 'nothing runs once closed');
});
