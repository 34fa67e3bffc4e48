/**
 * The `STORE` file: what an embedded store's directory was created with. Owned by the thread
 * that opens the store (the main thread); read once at open, written once at creation.
 *
 * Format: UTF-8 JSON `{ "format": "ringkv-store", "formatVersion": 1, "shards": S,
 * "partitionBits": B, "actor": "<id>" }`. Written atomically: temp file, fsync, rename, fsync
 * the directory. A file that does not parse is KV_CORRUPTION; another format version is
 * KV_INCOMPATIBLE.
 *
 * Why the shard count is fixed (and reopening with another count fails with KV_INCOMPATIBLE
 * naming both): each shard's engine holds the partitions `p mod S`. A different S would need
 * every partition moved between engines before the first read, or reads would silently miss
 * data. Until that migration exists, refusing is the only choice that never loses data.
 * The actor id is generated once here and names this store in every version vector it writes.
 * partitionBits and the actor id are fixed the same way (KV_INCOMPATIBLE when reopened with
 * others): a different partition count would misplace every key, and a different actor would
 * make this replica's later writes look like another node's.
 */

import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { readJsonFile, writeJsonFileAtomically } from '../storage/json-file.js';
import { limits } from '../base/limits.js';

/** Frozen: bump when the meaning of the STORE file or the directory layout changes. */
export const storeFormatVersion = 1;
export const STORE_FILE_NAME = 'STORE';

export interface StoreMetadata {
  format: 'ringkv-store';
  formatVersion: number;
  shards: number;
  partitionBits: number;
  actor: string;
}

export function readStoreMetadata(dir: string): StoreMetadata | undefined {
  const record = readJsonFile(dir, STORE_FILE_NAME, 'ringkv-store', storeFormatVersion);
  if (record === undefined) return undefined;
  if (!Number.isInteger(record.shards) || !Number.isInteger(record.partitionBits) || typeof record.actor !== 'string') {
    const path = join(dir, STORE_FILE_NAME);
    throw new RingkvError(ErrorCode.corruption, `${path} lacks shards, partitionBits or actor`, { path });
  }
  return record as unknown as StoreMetadata;
}

export function newActorId(): string {
  return `store-${randomBytes(8).toString('hex')}`;
}

export function writeStoreMetadata(dir: string, metadata: StoreMetadata): void {
  writeJsonFileAtomically(dir, STORE_FILE_NAME, metadata);
}

/** What a replica store (replica-store.ts) fixes at creation; a mismatch later is KV_INCOMPATIBLE. */
export interface Identity {
  partitionBits?: number;
  actor?: string;
}

function incompatible(dir: string, what: 'shards' | 'partitionBits' | 'actor', stored: unknown, requested: unknown): RingkvError {
  const created = what === 'shards' ? `${String(stored)} shards` : `${what} ${String(stored)}`;
  const why = what === 'shards' ? 'moving partitions between shards is not supported; reopen with the original count' : 'reopen with the original value';
  const field = what[0]!.toUpperCase() + what.slice(1);
  return new RingkvError(ErrorCode.incompatible, `${dir} was created with ${created} and cannot be opened with ${String(requested)}: ${why}`, {
    [`stored${field}`]: stored,
    [`requested${field}`]: requested,
  });
}

/**
 * Reads the STORE file of `dir`, or creates it. A stored shard count, partitionBits or actor
 * that differs from a requested one is KV_INCOMPATIBLE naming both.
 */
export function resolveStoreMetadata(settings: { dir: string; shards: number | undefined }, identity: Identity): StoreMetadata {
  const existing = readStoreMetadata(settings.dir);
  if (existing) {
    if (settings.shards !== undefined && existing.shards !== settings.shards) throw incompatible(settings.dir, 'shards', existing.shards, settings.shards);
    const { partitionBits, actor } = identity;
    if (partitionBits !== undefined && existing.partitionBits !== partitionBits) {
      throw incompatible(settings.dir, 'partitionBits', existing.partitionBits, partitionBits);
    }
    if (actor !== undefined && existing.actor !== actor) throw incompatible(settings.dir, 'actor', existing.actor, actor);
    return existing;
  }
  const metadata: StoreMetadata = {
    format: 'ringkv-store',
    formatVersion: storeFormatVersion,
    shards: settings.shards ?? availableParallelism(),
    partitionBits: identity.partitionBits ?? limits.partitionBitsDefault,
    actor: identity.actor ?? newActorId(),
  };
  writeStoreMetadata(settings.dir, metadata);
  return metadata;
}
