/**
 * The LZ4 block codec (lib/storage/lz4-block.ts): round trips on random and compressible data,
 * interoperability both ways with the native lz4_flex binding that wrote earlier tables, the
 * format's end rules, and refusal of malformed blocks. Property tests print their seed.
 */
import t from 'tap';
import fc from 'fast-check';
import { compressSync, uncompressSync } from 'lz4-napi';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { lz4Compress, lz4Decompress } from '../lib/storage/lz4-block.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

const declaredOf = (stored: Uint8Array): number => (stored[0]! | (stored[1]! << 8) | (stored[2]! << 16) | (stored[3]! << 24)) >>> 0;

/** Data with repeats at every distance and run length, from a few random fragments. */
const compressible = fc
  .array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 300 })), { maxLength: 40 })
  .map((parts) => {
    const out: number[] = [];
    for (const [fragment, times] of parts) for (let i = 0; i < times && out.length < 70_000; i++) out.push(...fragment);
    return Uint8Array.from(out);
  });
const anyData = fc.oneof(fc.uint8Array({ maxLength: 5000 }), compressible);

t.test('compress then decompress returns the input, and the native decoder reads our blocks', async (t) => {
  let checked = 0;
  fc.assert(
    fc.property(anyData, (data) => {
      const stored = lz4Compress(data);
      t.equal(declaredOf(stored), data.length);
      t.ok(stored.length <= 4 + data.length + Math.floor(data.length / 255) + 16, 'within the worst-case bound');
      t.same(Buffer.from(lz4Decompress(stored, data.length)), Buffer.from(data));
      t.same(Buffer.from(uncompressSync(Buffer.from(stored))), Buffer.from(data), 'lz4_flex decodes it');
      checked++;
    }),
    { seed, numRuns: 300 },
  );
  t.ok(checked >= 300);
});

t.test('blocks the native encoder wrote decode here', async (t) => {
  fc.assert(
    fc.property(anyData, (data) => {
      const stored = new Uint8Array(compressSync(Buffer.from(data)));
      t.same(Buffer.from(lz4Decompress(stored, declaredOf(stored))), Buffer.from(data));
    }),
    { seed, numRuns: 200 },
  );
});

t.test('compressible data shrinks; the last five bytes are literals', async (t) => {
  const data = new TextEncoder().encode('abcdefgh'.repeat(500));
  const stored = lz4Compress(data);
  t.ok(stored.length < data.length / 10, `${data.length} bytes stored as ${stored.length}`);
  t.same(Buffer.from(stored.subarray(stored.length - 5)), Buffer.from(data.subarray(data.length - 5)), 'the block ends with the input\'s last bytes as literals');
  t.same(Buffer.from(lz4Decompress(lz4Compress(new Uint8Array(0)), 0)), Buffer.alloc(0), 'an empty input round-trips');
});

t.test('malformed blocks throw instead of returning data', async (t) => {
  const data = new TextEncoder().encode('the quick brown fox '.repeat(50));
  const stored = lz4Compress(data);
  t.throws(() => lz4Decompress(stored.subarray(0, stored.length - 3), data.length), 'truncated');
  t.throws(() => lz4Decompress(stored, data.length + 1), 'declared size too large');
  t.throws(() => lz4Decompress(stored, data.length - 1), 'declared size too small');
  // A first sequence with a match whose offset points before the start.
  t.throws(() => lz4Decompress(Uint8Array.of(8, 0, 0, 0, 0x10, 65, 9, 0, 0), 8), /offset/);
  t.throws(() => lz4Decompress(Uint8Array.of(8, 0, 0, 0), 8), /ends before/);
  let threw = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 200 }), (bytes, declared) => {
      try {
        const out = lz4Decompress(Uint8Array.of(declared, 0, 0, 0, ...bytes), declared);
        t.equal(out.length, declared);
      } catch (error) {
        t.ok(error instanceof Error);
        threw++;
      }
    }),
    { seed, numRuns: 500 },
  );
  t.ok(threw > 0, 'random bytes are mostly refused');
});
