/**
 * The `NODE` file: who this node is across restarts. Owned by the supervisor (main thread);
 * read once at start, rewritten when the generation moves.
 *
 * Format: UTF-8 JSON `{ "format": "ringkv-node", "formatVersion": 1, "id": "<node id>",
 * "generation": G }`, written atomically (temp file, fsync, rename, fsync the directory), like
 * the STORE file. The id is chosen once (given, or `n-` + 8 random hex digits) and never
 * changes for a data directory: it names the node in membership and in the ring. The
 * generation is Cassandra's: one per process start, above every earlier start's
 * (`nextGeneration`), persisted before the node gossips it, so a restarted node's records
 * always beat its old ones.
 *
 * A file that does not parse is KV_CORRUPTION; another format version is KV_INCOMPATIBLE;
 * a given id that differs from the stored one is KV_INCOMPATIBLE (a data directory belongs
 * to one node), unless `adopt`: `--replace` on a directory that never was a member's (a start
 * refused by the start check left a NODE file and nothing else) takes the dead member's id.
 */

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { nextGeneration } from '../membership/index.js';
import { readJsonFile, writeJsonFileAtomically } from '../storage/json-file.js';

/** Frozen. */
export const nodeFormatVersion = 1;
export const NODE_FILE_NAME = 'NODE';

export interface NodeIdentity {
  readonly id: string;
  readonly generation: number;
}

interface NodeFile {
  format: 'ringkv-node';
  formatVersion: number;
  id: string;
  generation: number;
}

function readNodeFile(dir: string): NodeFile | undefined {
  const record = readJsonFile(dir, NODE_FILE_NAME, 'ringkv-node', nodeFormatVersion);
  if (record === undefined) return undefined;
  if (typeof record.id !== 'string' || record.id.length === 0 || !Number.isSafeInteger(record.generation)) {
    const path = join(dir, NODE_FILE_NAME);
    throw new RingkvError(ErrorCode.corruption, `${path} lacks an id or generation`, { path });
  }
  return record as unknown as NodeFile;
}

/** The identity stored in `dir` (id and the last start's generation), or undefined for a new directory. */
export function readNodeIdentity(dir: string): NodeIdentity | undefined {
  const stored = readNodeFile(dir);
  return stored && { id: stored.id, generation: stored.generation };
}

/** Atomically records the node's id and generation in `dir`. */
export function writeNodeIdentity(dir: string, identity: NodeIdentity): void {
  const file: NodeFile = { format: 'ringkv-node', formatVersion: nodeFormatVersion, id: identity.id, generation: identity.generation };
  writeJsonFileAtomically(dir, NODE_FILE_NAME, file);
}

/**
 * This start's identity: the stored id (or `requestedId`, or a new one) with the next
 * generation, persisted before it is returned.
 */
export function startIdentity(dir: string, requestedId: string | undefined, wallMs: number, adopt = false): NodeIdentity {
  const identity = planIdentity(dir, requestedId, wallMs, adopt);
  writeNodeIdentity(dir, identity);
  return identity;
}

/**
 * This start's identity, not yet persisted: the node writes it once its start check passed
 * and before it gossips (so a refused start leaves a new directory new).
 */
export function planIdentity(dir: string, requestedId: string | undefined, wallMs: number, adopt = false): NodeIdentity {
  const stored = readNodeFile(dir);
  if (stored && requestedId !== undefined && stored.id !== requestedId && !adopt) {
    throw new RingkvError(ErrorCode.incompatible, `${dir} belongs to node ${stored.id}, not ${requestedId}`, { dir, stored: stored.id, requested: requestedId });
  }
  const id = (adopt ? requestedId : undefined) ?? stored?.id ?? requestedId ?? `n-${randomBytes(4).toString('hex')}`;
  return { id, generation: nextGeneration(stored?.generation, wallMs) };
}
