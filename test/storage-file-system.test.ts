/**
 * The FileSystem seam: one conformance suite run against the real disk (NodeFileSystem, in a
 * temp dir) and the crash simulator (MemoryFileSystem), then the simulator's crash model and
 * fault injection (RELIABILITY.md D3, D6, D7, D8).
 */

import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { joinPath, readExactly, type FileSystem } from '../lib/storage/file-system.js';
import { MemoryFileSystem, SimulatedCrashError } from '../lib/storage/memory-file-system.js';
import { NodeFileSystem } from '../lib/storage/node-file-system.js';

const text = new TextEncoder();
const bytes = (s: string): Uint8Array => text.encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

type Tap = Test;

function conformance(t: Tap, fs: FileSystem, root: string): void {
  const p = (name: string): string => joinPath(root, name);

  t.test('a created file reads back what was appended, in order', async (t) => {
    const file = fs.createExclusive(p('a'));
    file.append(bytes('hello '));
    file.append(bytes('world'));
    t.equal(file.size(), 11);
    const out = new Uint8Array(8);
    t.equal(file.read(out, 2, 5, 6), 5);
    t.equal(str(out.subarray(2, 7)), 'world');
    t.equal(file.read(out, 0, 8, 11), 0, 'reading at the end returns 0 bytes');
    t.equal(file.read(out, 0, 8, 9), 2, 'a read near the end is short');
    file.sync();
    file.close();
    t.equal(str(fs.readFile(p('a'))), 'hello world');
    const reader = fs.openRead(p('a'));
    t.equal(reader.path, p('a'));
    t.equal(str(readExactly(reader, 0, 5)), 'hello');
    t.throws(() => readExactly(reader, 8, 10), { code: 'ESHORT' });
    reader.close();
  });

  t.test('createExclusive refuses an existing file with EEXIST', async (t) => {
    fs.createExclusive(p('b')).close();
    t.throws(() => fs.createExclusive(p('b')), { code: 'EEXIST' });
  });

  t.test('opening or reading a missing file throws ENOENT', async (t) => {
    t.throws(() => fs.openRead(p('missing')), { code: 'ENOENT' });
    t.throws(() => fs.readFile(p('missing')), { code: 'ENOENT' });
    t.throws(() => fs.createExclusive(p('no-dir/x')), { code: 'ENOENT' });
    t.throws(() => fs.openAppend(p('no-dir/x')), { code: 'ENOENT' });
  });

  t.test('openAppend creates a missing file and appends after existing bytes', async (t) => {
    const first = fs.openAppend(p('c'));
    t.equal(first.size(), 0);
    first.append(bytes('one'));
    first.close();
    const second = fs.openAppend(p('c'));
    t.equal(second.size(), 3);
    second.append(bytes('two'));
    const out = new Uint8Array(6);
    t.equal(second.read(out, 0, 6, 0), 6, 'an append handle can read');
    second.close();
    t.equal(str(fs.readFile(p('c'))), 'onetwo');
  });

  t.test('truncate cuts the file and the next append lands at the new end', async (t) => {
    const file = fs.createExclusive(p('d'));
    file.append(bytes('abcdef'));
    file.truncate(2);
    t.equal(file.size(), 2);
    file.append(bytes('XY'));
    file.close();
    t.equal(str(fs.readFile(p('d'))), 'abXY');
  });

  t.test('rename replaces the target; renaming a missing file throws ENOENT', async (t) => {
    fs.createExclusive(p('e-old')).close();
    const source = fs.createExclusive(p('e-new'));
    source.append(bytes('new'));
    source.close();
    fs.rename(p('e-new'), p('e-old'));
    t.equal(str(fs.readFile(p('e-old'))), 'new');
    t.notOk(fs.exists(p('e-new')));
    t.throws(() => fs.rename(p('e-new'), p('e-x')), { code: 'ENOENT' });
  });

  t.test('remove deletes a file and ignores a missing one', async (t) => {
    fs.createExclusive(p('f')).close();
    fs.remove(p('f'));
    t.notOk(fs.exists(p('f')));
    t.doesNotThrow(() => fs.remove(p('f')));
  });

  t.test('mkdirp, list and exists see files and directories', async (t) => {
    fs.mkdirp(p('sub/deeper'));
    fs.mkdirp(p('sub/deeper'));
    fs.createExclusive(p('sub/z')).close();
    fs.createExclusive(p('sub/a')).close();
    t.same(fs.list(p('sub')), ['a', 'deeper', 'z']);
    t.same(fs.list(p('nope')), []);
    t.throws(() => fs.list(p('sub/a')), { code: 'ENOTDIR' }, 'listing a file is an error');
    t.ok(fs.exists(p('sub')));
    t.ok(fs.exists(p('sub/deeper')));
    t.ok(fs.exists(p('sub/a')));
    t.notOk(fs.exists(p('sub/b')));
    fs.syncDir(p('sub'));
    t.throws(() => fs.syncDir(p('nope')), { code: 'ENOENT' });
  });

  t.test('a read-only handle refuses appends and a closed handle refuses all calls', async (t) => {
    const writer = fs.createExclusive(p('g'));
    writer.append(bytes('x'));
    writer.close();
    const reader = fs.openRead(p('g'));
    t.throws(() => reader.append(bytes('y')), { code: 'EBADF' });
    reader.close();
    const out = new Uint8Array(1);
    t.throws(() => reader.read(out, 0, 1, 0), { code: 'EBADF' });
    t.throws(() => reader.size(), { code: 'EBADF' });
    t.throws(() => writer.append(bytes('y')), { code: 'EBADF' });
    t.throws(() => writer.sync(), { code: 'EBADF' });
    t.throws(() => writer.truncate(0), { code: 'EBADF' });
    t.throws(() => writer.close(), { code: 'EBADF' });
    t.equal(str(fs.readFile(p('g'))), 'x');
  });
}

t.test('NodeFileSystem conformance', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ringkv-fs-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  conformance(t, new NodeFileSystem(), root);
});

t.test('MemoryFileSystem conformance', async (t) => {
  const fs = new MemoryFileSystem();
  fs.mkdirp('/data');
  conformance(t, fs, '/data');
});

/** A fresh simulator with /db made durable. */
function freshFs(): MemoryFileSystem {
  const fs = new MemoryFileSystem();
  fs.mkdirp('/db');
  return fs;
}

t.test('MemoryFileSystem crash: synced bytes stay, unsynced bytes go (or a torn prefix stays)', async (t) => {
  const rng = new SeededRng(seed);
  const outcomes = new Set<string>();
  for (let run = 0; run < 200; run++) {
    const fs = freshFs();
    const file = fs.createExclusive('/db/log');
    fs.syncDir('/db');
    file.append(bytes('synced|'));
    file.sync();
    file.append(bytes('unsynced-tail'));
    fs.crash(rng);
    const after = str(fs.readFile('/db/log'));
    t.ok(after.startsWith('synced|'), 'synced bytes survive');
    const tail = after.slice('synced|'.length);
    if (!'unsynced-tail'.startsWith(tail)) t.fail(`survivor is not a prefix: ${after}`);
    outcomes.add(tail === '' ? 'none' : tail === 'unsynced-tail' ? 'all' : 'part');
  }
  t.same([...outcomes].sort(), ['all', 'none', 'part'], 'a crash loses all, none or part of an unsynced tail');
});

t.test('MemoryFileSystem crash: handles become invalid and the surviving state is durable', async (t) => {
  const fs = freshFs();
  const file = fs.createExclusive('/db/x');
  fs.syncDir('/db');
  file.append(bytes('abc'));
  file.sync();
  fs.crash(new SeededRng(seed));
  t.throws(() => file.append(bytes('d')), { code: 'EBADF' });
  t.throws(() => file.size(), { code: 'EBADF' });
  const again = fs.openAppend('/db/x');
  again.append(bytes('d'));
  fs.crash(new SeededRng(seed));
  t.match(str(fs.readFile('/db/x')), /^abcd?$/);
});

t.test('MemoryFileSystem crash: directory entries follow syncDir', async (t) => {
  const fs = freshFs();
  const rng = new SeededRng(seed);
  const created = fs.createExclusive('/db/new');
  created.append(bytes('data'));
  created.sync();
  fs.crash(rng);
  t.notOk(fs.exists('/db/new'), 'a file created without syncDir vanishes, even if synced');

  const kept = fs.createExclusive('/db/kept');
  kept.append(bytes('k'));
  kept.sync();
  fs.syncDir('/db');
  fs.rename('/db/kept', '/db/renamed');
  fs.crash(rng);
  t.same(fs.list('/db'), ['kept'], 'a rename without syncDir reverts');

  fs.rename('/db/kept', '/db/renamed');
  fs.syncDir('/db');
  fs.crash(rng);
  t.same(fs.list('/db'), ['renamed'], 'a rename with syncDir sticks');

  fs.remove('/db/renamed');
  t.notOk(fs.exists('/db/renamed'));
  fs.crash(rng);
  t.equal(str(fs.readFile('/db/renamed')), 'k', 'a removal without syncDir comes back');

  fs.remove('/db/renamed');
  fs.syncDir('/db');
  fs.crash(rng);
  t.same(fs.list('/db'), [], 'a removal with syncDir sticks');
});

t.test('MemoryFileSystem crash: after a truncate only the durable bytes remain', async (t) => {
  const rng = new SeededRng(seed);
  for (let run = 0; run < 20; run++) {
    const fs = freshFs();
    const file = fs.createExclusive('/db/t');
    fs.syncDir('/db');
    file.append(bytes('0123456789'));
    file.sync();
    file.truncate(4);
    file.append(bytes('ab'));
    t.equal(str(fs.readFile('/db/t')), '0123ab');
    fs.crash(rng);
    t.equal(str(fs.readFile('/db/t')), '0123456789', 'a cut into durable bytes is undone');

    const again = fs.openAppend('/db/t');
    again.truncate(12);
    again.append(bytes('zz'));
    fs.crash(rng);
    t.equal(str(fs.readFile('/db/t')), '0123456789', 'an unsynced extending truncate is undone');
  }
});

t.test('MemoryFileSystem failAfter: the n-th mutating operation and everything after it throw', async (t) => {
  const procedure = (fs: MemoryFileSystem): void => {
    const file = fs.createExclusive('/db/p'); // 1 create
    file.append(bytes('a')); // 2 append
    file.sync(); // 3 sync
    fs.syncDir('/db'); // 4 syncDir
    file.truncate(0); // 5 truncate
    fs.rename('/db/p', '/db/q'); // 6 rename
    fs.remove('/db/q'); // 7 remove
    fs.mkdirp('/db/sub'); // 8 mkdirp
  };
  const counter = freshFs();
  const before = counter.operationCount;
  procedure(counter);
  const steps = counter.operationCount - before;
  t.equal(steps, 8);
  t.throws(() => counter.failAfter(0), RangeError);
  const names = ['create', 'append', 'sync', 'syncDir', 'truncate', 'rename', 'remove', 'mkdirp'];
  for (let step = 1; step <= steps; step++) {
    const fs = freshFs();
    fs.failAfter(step);
    const error = t.throws(() => procedure(fs)) as unknown;
    t.ok(error instanceof SimulatedCrashError, `step ${step} throws SimulatedCrashError`);
    t.equal((error as SimulatedCrashError).operation, names[step - 1]);
    t.ok(fs.failing);
    t.throws(() => fs.exists('/db/p'), SimulatedCrashError, 'reads throw while failing');
    t.throws(() => fs.list('/db'), SimulatedCrashError);
    t.throws(() => fs.mkdirp('/x'), SimulatedCrashError);
    fs.crash(new SeededRng(seed + step));
    t.notOk(fs.failing, 'crash() ends the failing state');
    t.equal(fs.exists('/db/sub'), false, 'the failing operation never took effect');
    t.equal(fs.exists('/db/p'), step >= 5, 'the file survives once its entry was synced; the later rename and remove were not');
  }
});

t.test('MemoryFileSystem failNextSync: one sync throws the given code and persists nothing', async (t) => {
  const rng = new SeededRng(seed);
  let lost = 0;
  for (let run = 0; run < 40; run++) {
    const fs = freshFs();
    const file = fs.createExclusive('/db/s');
    fs.syncDir('/db');
    file.append(bytes('payload'));
    fs.failNextSync();
    t.throws(() => file.sync(), { code: 'EIO' });
    fs.crash(rng);
    if (fs.readFile('/db/s').length < 7) lost++;
  }
  t.ok(lost > 0, 'bytes behind a failed sync can be lost');
  const fs = freshFs();
  const file = fs.createExclusive('/db/s');
  fs.failNextSync('ENOSPC');
  t.throws(() => file.sync(), { code: 'ENOSPC' });
  t.doesNotThrow(() => file.sync(), 'only the next sync fails');
  fs.failNextSync('EWHATEVER');
  t.throws(() => file.sync(), { code: 'EWHATEVER', message: /simulated error/ });
});

t.test('MemoryFileSystem capacity: appends over it throw ENOSPC and write nothing until lifted', async (t) => {
  const fs = freshFs();
  t.throws(() => fs.setCapacityBytes(-1), RangeError);
  fs.setCapacityBytes(10);
  const a = fs.createExclusive('/db/a');
  const b = fs.createExclusive('/db/b');
  a.append(bytes('123456'));
  b.append(bytes('1234'));
  t.throws(() => a.append(bytes('x')), { code: 'ENOSPC' });
  t.equal(a.size(), 6, 'nothing was written');
  b.truncate(0);
  a.append(bytes('xyz'));
  fs.setCapacityBytes();
  a.append(new Uint8Array(1000));
  t.equal(a.size(), 1009, 'writes resume once the cap is lifted');
});

t.test('MemoryFileSystem paths: normalised on "/" and directories are not files', async (t) => {
  const fs = freshFs();
  const file = fs.createExclusive('/db//x');
  file.append(bytes('v'));
  t.equal(str(fs.readFile('/db/./x')), 'v');
  t.equal(str(fs.readFile('/db/sub/../x')), 'v');
  t.same(fs.list('/'), ['db']);
  t.equal(joinPath('/db/', 'x'), '/db/x');
  fs.mkdirp('rel/dir');
  t.same(fs.list('.'), ['rel']);
  t.same(fs.list('rel/'), ['dir']);
  t.throws(() => fs.openRead('/db'), { code: 'EISDIR' });
  t.throws(() => fs.openAppend('/db'), { code: 'EISDIR' });
  t.throws(() => fs.remove('/db'), { code: 'EISDIR' });
  t.throws(() => fs.rename('/db/x', '/db'), { code: 'EISDIR' });
  t.throws(() => fs.mkdirp('/db/x/y'), { code: 'ENOTDIR' });
  t.throws(() => fs.rename('/db/x', '/none/x'), { code: 'ENOENT' });
});
