/**
 * What the RESP commands need from the node: coordinated reads and writes (the same
 * coordinator as /client), the clocks expiry is judged by, and figures for INFO and DBSIZE.
 * The node (lib/server/start-node.ts) implements it over the supervisor; tests may fake it.
 */

import type { Buffer } from 'node:buffer';

export interface RespRead {
  /** The live values (more than one: concurrent siblings). */
  values: Uint8Array[];
  context: Uint8Array;
  /** The value GET shows: the newest live sibling (lib/causality read-view.ts); undefined: none. */
  latest: Uint8Array | undefined;
  /** `latest`'s expiry (the writer's wall clock); undefined: it never expires. */
  expiresAtMs: number | undefined;
}

export interface RespWriteOptions {
  context?: Uint8Array | undefined;
  ttlMs?: number | undefined;
  overwrite?: boolean;
  keepTtl?: boolean;
  consistency?: string | undefined;
}

export interface RespNodeInfo {
  nodeId: string;
  version: string;
  uptimeMs: number;
  tcpPort: number;
  members: number;
  membersUp: number;
  replication: { n: number; r: number; w: number };
  loadBytes: number;
}

/** Where a plain read's value lies: `arena[plainAt, plainAt + plainLength)`, plainLength -1: none (nil). */
export interface PlainReadHit {
  readonly arena: Uint8Array;
  readonly plainAt: number;
  readonly plainLength: number;
}

export interface RespOperations {
  read(key: Uint8Array, consistency: string | undefined): Promise<RespRead>;
  /** The same read answered at once when the node can (its row cache, the key's only replica); else undefined. */
  readNow?(key: Uint8Array, consistency: string | undefined): RespRead | undefined;
  /**
   * The value a GET of `bytes[start, end)` at the node's read level answers, at once and
   * without copying when the node can (CoordinatorDriver.plainRead); valid only until the
   * node next changes its store. Undefined: read the usual way.
   */
  plainRead?(bytes: Uint8Array, start: number, end: number): PlainReadHit | undefined;
  /** A put (value) or delete (null); resolves with the new context. */
  write(key: Uint8Array, value: Uint8Array | null, options: RespWriteOptions): Promise<{ context: Uint8Array }>;
  /** The instant reads judge expiry at: this node's wall clock plus its skew bound. */
  expiryNowMs(): number;
  /** This node's wall clock (EXAT/PXAT are relative to it). */
  wallMs(): number;
  info(): RespNodeInfo;
  /** An estimate of the keys in the cluster (DBSIZE). */
  estimateKeys(): Promise<number>;
  /** The client token the node requires (AUTH), if any. */
  readonly clientToken: string | undefined;
}

export type Args = Buffer[];
