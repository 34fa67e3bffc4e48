/**
 * Real disk, real process, real SIGKILL: every write the child reported as acknowledged is
 * there after reopening. (kill -9 keeps the page cache, so this checks the ordering of our
 * recovery, not fsync itself; the in-memory crash model covers lost unsynced bytes.)
 */
import { runUntilAcks } from './fixtures/kill-after-acks.js';
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../lib/storage/engine.js';
import { NodeFileSystem } from '../lib/storage/node-file-system.js';

const writer = fileURLToPath(new URL('./fixtures/kill-writer.js', import.meta.url));


t.test('every acknowledged write survives SIGKILL of the writing process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-kill-'));
  try {
    const all = new Set<number>();
    for (const [round, acks] of [3000, 5000].entries()) {
      const acked = await runUntilAcks(writer, dir, acks);
      t.ok(acked.size >= acks, `round ${round}: child acknowledged ${acked.size} writes before SIGKILL`);
      const db = Engine.open({ fs: new NodeFileSystem(), dir });
      let missing = 0;
      for (const n of acked) {
        const got = db.get(new TextEncoder().encode(`key-${n}`));
        if (got === undefined || !new TextDecoder().decode(got).startsWith(`value-${n}-`)) missing++;
      }
      t.equal(missing, 0, `round ${round}: 0 of ${acked.size} acknowledged writes missing`);
      for (const n of acked) all.add(n);
      await db.close();
    }
    t.ok(all.size > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
