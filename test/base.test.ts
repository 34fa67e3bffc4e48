import t from 'tap';
import {
  assert,
  AssertionError,
  assertNever,
  crc32c,
  crc32cTable,
  NATIVE_BYTES_MIN,
  createLogger,
  ErrorCode,
  isErrorCode,
  isRingkvError,
  limits,
  ManualClock,
  maskCrc,
  murmur3,
  partitionOfToken,
  RingkvError,
  SeededRng,
  seedFromEnvironment,
  setInvariantsEnabled,
  invariantsEnabled,
  systemClock,
  tokenOf,
  unmaskCrc,
} from '../lib/base/index.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

t.test('murmur3 x86_32 matches the published test vectors', async (t) => {
  // From SMHasher / the reference implementation's documented outputs.
  const vectors: [string | number[], number, number][] = [
    ['', 0, 0x00000000],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    [[0xff, 0xff, 0xff, 0xff], 0, 0x76293b50],
    [[0x21, 0x43, 0x65, 0x87], 0, 0xf55b516b],
    [[0x21, 0x43, 0x65, 0x87], 0x5082edee, 0x2362f9de],
    [[0x21, 0x43, 0x65], 0, 0x7e4a8634],
    [[0x21, 0x43], 0, 0xa0f7b07a],
    [[0x21], 0, 0x72661cf4],
    [[0, 0, 0, 0], 0, 0x2362f9de],
    ['test', 0, 0xba6bd213],
    ['Hello, world!', 0, 0xc0363e43],
    ['Hello, world!', 1234, 0xfaf6cdb3],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
    ['aaaa', 0x9747b28c, 0x5a97808a],
  ];
  for (const [input, seed, want] of vectors) {
    const bytes = typeof input === 'string' ? utf8(input) : new Uint8Array(input);
    t.equal(murmur3(bytes, seed), want, `murmur3(${JSON.stringify(input)}, ${seed})`);
  }
  t.equal(tokenOf(utf8('test')), 0xba6bd213, 'tokenOf is murmur3 with seed 0');
});

t.test('partition is the top bits of the token', async (t) => {
  t.equal(partitionOfToken(0xffffffff, 10), 1023);
  t.equal(partitionOfToken(0x00000000, 10), 0);
  t.equal(partitionOfToken(0x80000000, 1), 1);
  t.equal(partitionOfToken(0x12345678, 0), 0);
});

t.test('crc32c matches the standard check value and extends incrementally', async (t) => {
  t.equal(crc32c(utf8('123456789')), 0xe3069283);
  t.equal(crc32c(new Uint8Array(32)), 0x8a9136aa, '32 zero bytes (RFC 3720 B.4)');
  t.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43, '32 0xff bytes (RFC 3720 B.4)');
  const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
  t.equal(crc32c(ascending), 0x46dd794e, '32 ascending bytes (RFC 3720 B.4)');
  const data = new SeededRng(7).bytes(1000);
  const whole = crc32c(data);
  for (const split of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    t.equal(crc32c(data, crc32c(data, 0, 0, split), split), whole, `split at ${split}`);
  }
  t.equal(unmaskCrc(maskCrc(whole)), whole, 'mask round trip');
  // Native (>= NATIVE_BYTES_MIN) and table paths agree on every length and split around the switch.
  const seed = 11;
  const rng = new SeededRng(seed);
  for (const length of [0, 1, NATIVE_BYTES_MIN - 1, NATIVE_BYTES_MIN, NATIVE_BYTES_MIN + 1, 4096, 10_240]) {
    const bytes = rng.bytes(length + 16);
    const start = length % 16;
    t.equal(crc32c(bytes, 0, start, start + length), crc32cTable(bytes, 0, start, start + length), `seed ${seed}: ${length} bytes at ${start}`);
    t.equal(crc32c(bytes, 0x1234, start, start + length), crc32cTable(bytes, 0x1234, start, start + length), `${length} bytes, extended`);
  }
  const long = new Uint8Array(4096);
  t.equal(crc32c(long), crc32cTable(long), 'zeros, native path');
  t.not(maskCrc(whole), whole, 'masking changes the value');
});

t.test('RingkvError carries a stable code and details', async (t) => {
  const e = new RingkvError(ErrorCode.tooLarge, 'too big', { sizeBytes: 5 });
  t.equal(e.code, 'KV_TOO_LARGE');
  t.same(e.details, { sizeBytes: 5 });
  t.ok(isRingkvError(e));
  t.ok(isRingkvError(e, ErrorCode.tooLarge));
  t.notOk(isRingkvError(e, ErrorCode.timeout));
  t.notOk(isRingkvError(new Error('x')));
  t.ok(isErrorCode('KV_TIMEOUT'));
  t.notOk(isErrorCode('NOPE'));
  const codes = Object.values(ErrorCode);
  t.equal(new Set(codes).size, codes.length, 'codes are distinct');
  for (const c of codes) t.match(c, /^KV_[A-Z_]+$/);
});

t.test('assert and assertNever throw AssertionError', async (t) => {
  t.doesNotThrow(() => assert(true));
  t.throws(() => assert(false, 'boom'), AssertionError);
  t.throws(() => assertNever('x' as never), /unexpected value: x/);
  const before = invariantsEnabled();
  setInvariantsEnabled(!before);
  t.equal(invariantsEnabled(), !before);
  setInvariantsEnabled(before);
});

t.test('clocks: manual clock moves only when told, wall skew leaves monotonic alone', async (t) => {
  const c = new ManualClock(1000);
  t.equal(c.wallMs(), 1000);
  c.advance(50);
  t.equal(c.wallMs(), 1050);
  t.equal(c.monotonicMs(), 50);
  c.skewWall(-300);
  t.equal(c.wallMs(), 750);
  t.equal(c.monotonicMs(), 50);
  t.throws(() => c.advance(-1), RangeError);
  t.ok(systemClock.monotonicMs() >= 0);
  t.ok(systemClock.wallMs() > 1.6e12);
});

t.test('seeded rng is reproducible and in range', async (t) => {
  const a = new SeededRng(42);
  const b = new SeededRng(42);
  const xs = Array.from({ length: 100 }, () => a.next());
  t.same(Array.from({ length: 100 }, () => b.next()), xs);
  t.ok(xs.every((x) => x >= 0 && x < 1));
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i++) counts[a.int(10)]++;
  t.ok(counts.every((n) => n > 800 && n < 1200), `roughly uniform: ${counts}`);
  t.equal(a.bytes(17).length, 17);
  t.throws(() => a.int(0), RangeError);
  t.throws(() => new SeededRng(1.5), TypeError);
  t.not(new SeededRng(1).next(), new SeededRng(2).next());
  t.type(seedFromEnvironment(), 'number');
});

t.test('limits hold their stated relations', async (t) => {
  t.ok(limits.keyBytesMax <= limits.keyBytesCeiling);
  t.ok(limits.level0CompactionTrigger < limits.level0StopTrigger);
  t.equal(limits.keyBytesCeiling, 65535);
});

t.test('logger writes JSON lines and redacts secrets', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
  log.warn({ file: 'x.wal', secret: 'hunter2' }, 'hello');
  t.equal(lines.length, 1);
  const parsed = JSON.parse(lines[0]!);
  t.equal(parsed.msg, 'hello');
  t.equal(parsed.file, 'x.wal');
  t.not(parsed.secret, 'hunter2');
});
