/**
 * The responder's side of an exchange (exchange.ts is the initiator's): answers another
 * replica's hashes, list, fetch and push requests for a partition this node holds. Stateless
 * between requests and sans-IO: what needs the store is returned as an action, and the
 * driver (the supervisor) turns the store's answer into the reply with `listReply` /
 * `fetchReply`. Owned by the supervisor's main thread.
 *
 *   onRequest(from, body) → actions, in order:
 *     {type:'reply', message, bytes}              send it as the rpc reply
 *     {type:'list-local', request}                list the keys of request.leaves in leaf order
 *                                                 (whole leaves; the driver may stop after any
 *                                                 leaf) → listReply(request, entries, leavesScanned)
 *     {type:'read-local', request}                read request.keys → fetchReply(request, objects)
 *     {type:'merge-local', partition, key, object} merge with mergeReplicas, feed the tree
 *                                                 (skipping expired tombstones of keys not held,
 *                                                 purge-ledger.ts); then send the reply after it
 *
 * Hostile requests (RELIABILITY.md B11) never throw: malformed ones, reply types, partitions
 * this node does not hold (KV_UNAVAILABLE), another tree shape or hash version
 * (KV_INCOMPATIBLE), node indices outside the tree, and keys of another partition
 * (KV_BAD_REQUEST) are answered with ae-error. Replies stay bounded: a listing holds at most
 * `listEntriesMax` entries (a single larger leaf is KV_TOO_LARGE: configure more leaves), a
 * fetch reply adds objects while under `messageBytesSoft` (at least one).
 */

import { assert } from '../base/assert.js';
import { ErrorCode } from '../base/errors.js';
import { tokenOf } from '../base/hash.js';
import { limits } from '../base/limits.js';
import {
  exchangeError,
  messageBytes,
  parseExchangeMessage,
  type ExchangeReply,
  type ExchangeRequest,
  type FetchRequest,
  type HashesRequest,
  type ListRequest,
} from './exchange-message.js';
import type { LeafEntry } from './leaf-diff.js';
import type { PartitionTree } from './partition-tree.js';
import { nodeHashBytes, treeHashVersion } from './tree-hash.js';

export type ResponderAction =
  | { readonly type: 'reply'; readonly message: ExchangeReply; readonly bytes: number }
  | { readonly type: 'list-local'; readonly request: ListRequest }
  | { readonly type: 'read-local'; readonly request: FetchRequest }
  | { readonly type: 'merge-local'; readonly partition: number; readonly key: Uint8Array; readonly object: Uint8Array };

export interface ExchangeResponderOptions {
  /** This node's tree of a partition, undefined when it holds no replica of it. */
  readonly treeOf: (partition: number) => PartitionTree | undefined;
  readonly listEntriesMax?: number;
  readonly messageBytesSoft?: number;
}

export interface ResponderStats {
  requests: number;
  refused: number;
  keysListed: number;
  keysServed: number;
  keysMerged: number;
}

export class ExchangeResponder {
  readonly #treeOf: (partition: number) => PartitionTree | undefined;
  readonly #listEntriesMax: number;
  readonly #messageBytesSoft: number;
  readonly #stats: ResponderStats = { requests: 0, refused: 0, keysListed: 0, keysServed: 0, keysMerged: 0 };

  constructor(options: ExchangeResponderOptions) {
    this.#treeOf = options.treeOf;
    this.#listEntriesMax = options.listEntriesMax ?? limits.antiEntropyListEntriesMax;
    this.#messageBytesSoft = options.messageBytesSoft ?? limits.antiEntropyMessageBytesSoft;
    if (!Number.isInteger(this.#listEntriesMax) || this.#listEntriesMax < 1 || this.#listEntriesMax > limits.antiEntropyListEntriesMax) {
      throw new RangeError(`listEntriesMax must be an integer in [1, ${limits.antiEntropyListEntriesMax}]`);
    }
    if (!(this.#messageBytesSoft >= 1)) throw new RangeError('messageBytesSoft must be positive');
  }

  stats(): Readonly<ResponderStats> {
    return { ...this.#stats };
  }

  onRequest(from: string, body: unknown): ResponderAction[] {
    this.#stats.requests++;
    const parsed = parseExchangeMessage(body);
    if (!parsed.ok) return [this.#error(headerOf(body), ErrorCode.badRequest, `malformed request from ${from}: ${parsed.reason}`)];
    const request = parsed.value;
    if (request.t !== 'ae-hashes' && request.t !== 'ae-list' && request.t !== 'ae-fetch' && request.t !== 'ae-push') {
      return [this.#error(request, ErrorCode.badRequest, `${request.t} is not a request`)];
    }
    const tree = this.#treeOf(request.partition);
    if (tree === undefined) return [this.#error(request, ErrorCode.unavailable, `this node holds no replica of partition ${request.partition}`)];
    const invalid = checkRequest(tree, request);
    if (invalid !== undefined) return [this.#error(request, invalid.code, invalid.message)];
    switch (request.t) {
      case 'ae-hashes':
        return [reply({ t: 'ae-hashes-reply', exchangeId: request.exchangeId, seq: request.seq, hashes: hashesFor(tree, request) })];
      case 'ae-list':
        return [{ type: 'list-local', request }];
      case 'ae-fetch':
        return [{ type: 'read-local', request }];
      case 'ae-push': {
        const actions: ResponderAction[] = request.keys.map((key, i) => ({ type: 'merge-local', partition: request.partition, key, object: request.objects[i]! }));
        this.#stats.keysMerged += request.keys.length;
        actions.push(reply({ t: 'ae-push-reply', exchangeId: request.exchangeId, seq: request.seq }));
        return actions;
      }
    }
  }

  /** The reply to a list request from the store's entries of its first `leavesScanned` leaves. */
  listReply(request: ListRequest, entries: readonly LeafEntry[], leavesScanned = request.leaves.length): ResponderAction {
    assert(Number.isInteger(leavesScanned) && leavesScanned >= 1 && leavesScanned <= request.leaves.length, 'leavesScanned out of range');
    const tree = this.#treeOf(request.partition);
    if (tree === undefined) return this.#error(request, ErrorCode.unavailable, `this node no longer holds partition ${request.partition}`);
    let leafCount = 0;
    let end = 0;
    while (leafCount < leavesScanned) {
      const leaf = request.leaves[leafCount]!;
      let next = end;
      while (next < entries.length && tree.leafOfToken(tokenOf(entries[next]!.key)) === leaf) next++;
      if (next > this.#listEntriesMax) break;
      end = next;
      leafCount++;
    }
    assert(leafCount < leavesScanned || end === entries.length, 'listing holds keys outside the leaves asked for, or out of order');
    if (leafCount === 0) return this.#error(request, ErrorCode.tooLarge, `leaf ${request.leaves[0]} holds more than ${this.#listEntriesMax} keys`);
    const keys: Uint8Array[] = [];
    const hashes = new Uint8Array(nodeHashBytes * end);
    for (let i = 0; i < end; i++) {
      keys.push(entries[i]!.key);
      hashes.set(entries[i]!.objectHash, i * nodeHashBytes);
    }
    this.#stats.keysListed += end;
    return reply({ t: 'ae-list-reply', exchangeId: request.exchangeId, seq: request.seq, leafCount, keys, hashes });
  }

  /** The reply to a fetch request from the store's objects of its keys (undefined: no record). */
  fetchReply(request: FetchRequest, objects: readonly (Uint8Array | undefined)[]): ResponderAction {
    assert(objects.length === request.keys.length, 'one object (or undefined) per key');
    const out: (Uint8Array | null)[] = [];
    let bytes = 0;
    for (const object of objects) {
      const size = object === undefined ? 1 : object.length;
      if (out.length > 0 && bytes + size > this.#messageBytesSoft) break;
      out.push(object ?? null);
      bytes += size;
    }
    this.#stats.keysServed += out.length;
    return reply({ t: 'ae-fetch-reply', exchangeId: request.exchangeId, seq: request.seq, objects: out });
  }

  #error(header: { exchangeId: number; seq: number }, code: ErrorCode, message: string): ResponderAction {
    this.#stats.refused++;
    return reply(exchangeError(header, code, message));
  }
}

function reply(message: ExchangeReply): ResponderAction {
  return { type: 'reply', message, bytes: messageBytes(message) };
}

/** The ids of a request that failed to parse, when it has usable ones. */
function headerOf(body: unknown): { exchangeId: number; seq: number } {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const exchangeId = Number.isSafeInteger(record.exchangeId) && (record.exchangeId as number) >= 0 ? (record.exchangeId as number) : 0;
  const seq = Number.isInteger(record.seq) && (record.seq as number) >= 0 && (record.seq as number) <= 0x7fffffff ? (record.seq as number) : 0;
  return { exchangeId, seq };
}

function checkRequest(tree: PartitionTree, request: ExchangeRequest): { code: ErrorCode; message: string } | undefined {
  if (request.t === 'ae-hashes' || request.t === 'ae-list') {
    if (request.hashVersion !== treeHashVersion || !tree.sameShape(request)) {
      return { code: ErrorCode.incompatible, message: `tree shape or hash version differs (here: v${treeHashVersion}, ${tree.partitionBits}/${tree.leafBits}/${tree.fanoutBits})` };
    }
  }
  switch (request.t) {
    case 'ae-hashes': {
      if (request.level > tree.depth) return { code: ErrorCode.badRequest, message: `level ${request.level} below the leaves` };
      const parentsMax = request.level === 0 ? 0 : tree.levelSize(request.level - 1);
      if (request.parents.some((parent) => parent >= parentsMax)) return { code: ErrorCode.badRequest, message: 'a parent index outside the tree' };
      return undefined;
    }
    case 'ae-list':
      if (request.leaves.some((leaf) => leaf >= tree.levelSize(tree.depth))) return { code: ErrorCode.badRequest, message: 'a leaf index outside the tree' };
      return undefined;
    case 'ae-fetch':
    case 'ae-push':
      if (request.keys.some((key) => !tree.holdsToken(tokenOf(key)))) return { code: ErrorCode.badRequest, message: `a key outside partition ${tree.partition}` };
      return undefined;
  }
}

function hashesFor(tree: PartitionTree, request: HashesRequest): Uint8Array {
  return request.level === 0 ? tree.rootHash() : tree.childHashes(request.level - 1, request.parents);
}
