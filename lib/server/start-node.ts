/**
 * startNode: one cluster node in this process — the shards (lib/store's replica store under
 * `<dir>/store`), the supervisor (membership, ring, coordination) and the one HTTP/WebSocket
 * server (/peer, /client, /status, /metrics). Options are named like the `ringkv start` flags.
 * Owned by the main thread.
 *
 * Safety defaults: without a cluster secret the node binds loopback only (127.0.0.1) and says
 * so; with a secret it binds all interfaces unless `host` says otherwise. Options are checked
 * up front (TypeError/RangeError naming the option) before anything is opened. A failure
 * while starting closes whatever was already opened.
 *
 * Lifecycle (issue 10): a directory whose MEMBERS file says this node owned partitions starts
 * it as an owner; `replace` first resolves the member to replace (lib/supervisor/lifecycle)
 * and takes its id; startNode resolves only after the start check, so a node whose directory
 * does not match the cluster (removed, replaced, a lost disk at a member's address) rejects
 * with a KV_INCOMPATIBLE RingkvError saying what to do.
 */

import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { systemClock } from '../base/clock.js';
import type { RingkvError } from '../base/errors.js';
import { createLogger, type LogFormat, type Logger, type LogLevel } from '../base/log.js';
import { limits, rowCacheBytesDefault } from '../base/limits.js';
import { SeededRng } from '../base/rng.js';
import { validateReplication, type Replication } from '../ring/index.js';
import { openReplicaStore } from '../store/index.js';
import { HintStore, readMembershipFile, readNodeIdentity, resolveReplaceTarget, planIdentity, Supervisor, type MembershipView, type StatusJson } from '../supervisor/index.js';
import { NodeFileSystem } from '../storage/index.js';
import { partitionOfToken, tokenOf } from '../base/hash.js';
import { isLoopbackHost, startTransportServer } from '../transport/index.js';
import { createHttpHandler } from '../http/routes.js';
import { NodeMetrics } from '../http/metrics.js';
import { startRespFrontDoor } from './resp-front-door.js';
import { LiveFeed } from '../http/dashboard-feed.js';
import { dashboardRoutes } from '../http/dashboard-routes.js';
import { scalingActionsOf, scalingOptionsOf, type ScalingNodeOptions } from './scaling-options.js';

export type { StatusJson } from '../supervisor/index.js';

export interface NodeOptions extends ScalingNodeOptions {
  /** Port for HTTP, /peer and /client; default 7070; 0 picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1 without a secret, 0.0.0.0 with one. */
  host?: string;
  /** The address other nodes and clients use (host:port); default host:port (a LAN address when bound to all interfaces). */
  advertise?: string;
  /** Data directory; default ./data. */
  dir?: string;
  /** host:port of seed nodes. */
  seeds?: string[];
  dc?: string;
  rack?: string;
  weight?: number;
  shards?: number;
  /** The cluster secret (peers must share it). */
  secret?: string | Uint8Array;
  /** Clients must present this token when set. */
  clientToken?: string;
  /** The node id for a new data directory (default generated). */
  id?: string;
  /**
   * Take a dead member's place (host:port or node id; Cassandra's replace_address_first_boot):
   * its id, exactly its partitions, streamed from the surviving replicas. Only for a directory
   * that never was a member's; ignored (logged) once this directory has joined.
   */
  replace?: string;
  replication?: Replication;
  /** log2 of the partition count; the same on every node (default limits.partitionBitsDefault). */
  partitionBits?: number;
  logLevel?: LogLevel;
  /** 'pretty' or 'json' log lines; default pretty when stderr is a terminal (lib/base/log.ts). */
  logFormat?: LogFormat;
  logger?: Logger;
  tls?: { certFile: string; keyFile: string; caFile?: string };
  sync?: 'fsync' | 'none';
  /** Bytes of the row cache (recently read stored objects on the main thread); default rowCacheBytesDefault() (a 24th of the memory the process may use, 64-512 MiB); at most limits.rowCacheBytesHeldMax is used; 0: none. */
  rowCacheBytes?: number;
  /** Gossip interval (tests shorten it); default limits.gossipIntervalMs. */
  gossipIntervalMs?: number;
  /** 'sloppy' (default): a write whose replica is down goes to a stand-in as a hint; 'strict': it fails instead. */
  quorum?: 'sloppy' | 'strict';
  /** One scheduled Merkle exchange every this many ms at most (default limits.antiEntropyIntervalMsDefault; 0: only on `repair`). */
  antiEntropyIntervalMs?: number;
  /**
   * The scheduled sweep exchanges every (partition, peer replica) pair of this node once per
   * this many ms, paced by the anti-entropy token bucket (default
   * limits.antiEntropySweepPeriodMsDefault, one hour; `ringkv start --anti-entropy-sweep-seconds`).
   */
  antiEntropySweepPeriodMs?: number;
  /**
   * Max hint window (Cassandra's max_hint_window): no new hints for a node whose oldest
   * undelivered hint is older than this (default limits.hintWindowMs, 3 h); its partitions are
   * left to anti-entropy. `ringkv start --max-hint-window-seconds`.
   */
  maxHintWindowMs?: number;
  /** Most bytes of undelivered hints kept per target node (default limits.hintBytesMaxPerTarget, 256 MiB). */
  hintBytesMaxPerTarget?: number;
  /**
   * Tombstones are purged no sooner than this many ms after the delete, and only once every
   * replica has exchanged with this node since (Cassandra's gc_grace_seconds, plus the
   * exchange rule). Default limits.tombstoneGraceMsDefault (10 days); Infinity never purges.
   * Keep it above the hint window and the longest expected outage. A write after a purge is
   * safe: a replica's first event on a key takes a counter above any purged history
   * (freshCounterFloor in lib/causality/stored-object.ts).
   */
  tombstoneGraceMs?: number;
  /**
   * Old owners drop partitions they no longer replicate by themselves, once every current
   * replica has them (lib/supervisor/auto-cleanup.ts): a pass every this many ms (default
   * limits.autoCleanupIntervalMsDefault; 0: only on `ringkv cleanup`), no sooner than
   * `autoCleanupSettleMs` after the last ring change (default limits.autoCleanupSettleMsDefault).
   */
  autoCleanupIntervalMs?: number;
  autoCleanupSettleMs?: number;
  /**
   * Pace of partition streaming on joins, leaves and removals, and of the catch-up after them
   * (Cassandra's stream throughput): default limits.handoffBytesPerSecondDefault (2 MiB/s),
   * chosen so foreground p99 stays near idle on a small machine; raise it on bigger ones.
   */
  handoffBytesPerSecond?: number;
  /** Port of the Redis-protocol listener (lib/resp; README "Redis protocol"); off unless given; 0 picks a free one. */
  respPort?: number;
  /**
   * Bound on the wall-clock skew between nodes that TTL expiry tolerates (default
   * limits.clockSkewMsDefault): this node judges expiry at its clock plus this, so it never
   * serves a value after its expiry if its clock lags the writer's by up to this much.
   */
  clockSkewMs?: number;
}

export interface RingkvNode {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly address: string;
  /** The RESP port, when the node speaks the Redis protocol. */
  readonly respPort?: number;
  status(): StatusJson;
  /** Resolves once the node has left the cluster (`ringkv leave`) and closed itself. */
  readonly left?: Promise<void>;
  /**
   * Resolves (with the refusal) if the cluster refuses this node after it started, once it
   * closed itself: the start check had no answer in time, and a peer later said this node was
   * removed or replaced (`ringkv start` then exits 1).
   */
  readonly refused?: Promise<RingkvError>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The package version, from package.json (three levels above build/lib/server). */
function packageVersion(): string {
  try {
    const manifest = createRequire(import.meta.url)('../../../package.json') as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

function secretBytes(secret: string | Uint8Array | undefined): Uint8Array | undefined {
  if (secret === undefined) return undefined;
  if (typeof secret === 'string') {
    if (secret.length === 0) throw new RangeError('secret must not be empty');
    return new TextEncoder().encode(secret);
  }
  if (!(secret instanceof Uint8Array) || secret.length === 0) throw new TypeError('secret must be a non-empty string or Uint8Array');
  return secret;
}

function checkOptions(options: NodeOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  scalingOptionsOf(options, '.'); // scaling: checks autoscale, capacityBytes and stagedJoin
  const { port, weight, seeds, shards, gossipIntervalMs, quorum, respPort, clockSkewMs } = options;
  if (respPort !== undefined && (!Number.isInteger(respPort) || respPort < 0 || respPort > 65535)) throw new RangeError(`respPort must be an integer within [0, 65535], got ${respPort}`);
  if (clockSkewMs !== undefined && (!Number.isInteger(clockSkewMs) || clockSkewMs < 0 || clockSkewMs > limits.clockSkewMsMax)) {
    throw new RangeError(`clockSkewMs must be an integer within [0, ${limits.clockSkewMsMax}]`);
  }
  if (quorum !== undefined && quorum !== 'sloppy' && quorum !== 'strict') throw new TypeError("quorum must be 'sloppy' or 'strict'");
  const ae = options.antiEntropyIntervalMs;
  if (ae !== undefined && (!Number.isInteger(ae) || ae < 0)) throw new RangeError('antiEntropyIntervalMs must be a non-negative integer');
  for (const name of ['autoCleanupIntervalMs', 'autoCleanupSettleMs'] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) throw new RangeError(`${name} must be a non-negative integer`);
  }
  const streamRate = options.handoffBytesPerSecond;
  if (streamRate !== undefined && (!Number.isInteger(streamRate) || streamRate < 1)) throw new RangeError('handoffBytesPerSecond must be a positive integer');
  const sweep = options.antiEntropySweepPeriodMs;
  if (sweep !== undefined && (!Number.isInteger(sweep) || sweep < limits.antiEntropySweepPeriodMsMin || sweep > limits.antiEntropySweepPeriodMsMax)) {
    throw new RangeError(`antiEntropySweepPeriodMs must be an integer within [${limits.antiEntropySweepPeriodMsMin}, ${limits.antiEntropySweepPeriodMsMax}]`);
  }
  for (const name of ['maxHintWindowMs', 'hintBytesMaxPerTarget'] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) throw new RangeError(`${name} must be a non-negative integer`);
  }
  const grace = options.tombstoneGraceMs;
  if (grace !== undefined && !(grace === Infinity || (Number.isInteger(grace) && grace >= 0))) throw new RangeError('tombstoneGraceMs must be a non-negative integer or Infinity');
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new RangeError(`port must be an integer within [0, 65535], got ${port}`);
  if (weight !== undefined && (typeof weight !== 'number' || !(weight > 0) || weight > limits.memberWeightMax)) throw new RangeError(`weight must be within (0, ${limits.memberWeightMax}]`);
  if (seeds !== undefined && (!Array.isArray(seeds) || seeds.some((s) => typeof s !== 'string' || !/^[^\s:]+:\d+$/.test(s)))) {
    throw new TypeError('seeds must be an array of host:port strings');
  }
  if (shards !== undefined && (!Number.isInteger(shards) || shards < 1)) throw new RangeError('shards must be a positive integer');
  if (gossipIntervalMs !== undefined && (!Number.isInteger(gossipIntervalMs) || gossipIntervalMs < 10)) throw new RangeError('gossipIntervalMs must be an integer >= 10');
  if (options.advertise !== undefined && (typeof options.advertise !== 'string' || !/^[^\s:]+:\d+$/.test(options.advertise))) throw new TypeError('advertise must be a host:port string');
  for (const field of ['dc', 'rack', 'id', 'host', 'dir', 'clientToken', 'advertise', 'replace'] as const) {
    const value = options[field];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new TypeError(`${field} must be a non-empty string`);
  }
}

function lanAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Starts a node; resolves once it listens and gossips. */
export async function startNode(options: NodeOptions = {}): Promise<RingkvNode> {
  checkOptions(options);
  const secret = secretBytes(options.secret);
  const replication = validateReplication(options.replication ?? limits.replicationDefault, 'replication');
  const host = options.host ?? (secret ? '0.0.0.0' : '127.0.0.1');
  const logger = options.logger ?? createLogger({ level: options.logLevel ?? 'info', ...(options.logFormat ? { format: options.logFormat } : {}) });
  if (!secret) {
    if (!isLoopbackHost(host)) throw new RangeError(`host ${host} is not loopback: a node without a cluster secret listens on loopback only (set RINGKV_SECRET or --secret-file)`);
  }
  // Protected mode (as Redis's): beyond loopback, clients need a token unless told otherwise.
  if (!isLoopbackHost(host) && options.clientToken === undefined && options.insecureClients !== true) {
    throw new RangeError(`host ${host} is not loopback: clients would need no token; set RINGKV_CLIENT_TOKEN (clientToken), or pass --insecure-clients (insecureClients: true) to allow them`);
  }
  const dir = resolve(options.dir ?? './data');
  const clock = systemClock;
  const previous = readNodeIdentity(dir);
  const restored = readMembershipFile(dir);
  const replacing = await replaceTargetOf(options, restored, logger);
  const identity = planIdentity(dir, replacing ?? options.id, clock.wallMs(), replacing !== undefined && previous === undefined); // written by checkStart
  const partitionBits = options.partitionBits ?? limits.partitionBitsDefault;
  // A new store gets a new actor id: the node id plus a random incarnation, so a node whose
  // data was wiped and that rejoins under its old id never reuses a dot (Riak's kv679).
  const storeDir = join(dir, 'store');
  const actor = existsSync(join(storeDir, 'STORE')) ? undefined : `${identity.id.slice(0, 40)}~${randomBytes(4).toString('hex')}`;
  if (options.rowCacheBytes !== undefined && options.rowCacheBytes > limits.rowCacheBytesHeldMax) {
    logger.warn({ rowCacheBytes: options.rowCacheBytes, usedBytes: limits.rowCacheBytesHeldMax }, 'the row cache holds at most 512 MiB; the rest of its budget is not used');
  }
  const store = await openReplicaStore({ dir: storeDir, partitionBits, publishPerTurn: true, ...(actor ? { actor } : {}), logger, ...(options.shards ? { shards: options.shards } : {}), ...(options.sync ? { sync: options.sync } : {}), rowCacheBytes: options.rowCacheBytes ?? rowCacheBytesDefault() });
  const cleanups: (() => Promise<void> | void)[] = [() => store.close()];
  try {
    const hints = HintStore.open({
      fs: new NodeFileSystem(),
      dir: join(dir, 'hints'),
      clock,
      logger,
      bytesMax: options.hintBytesMaxPerTarget ?? limits.hintBytesMaxPerTarget,
      windowMs: options.maxHintWindowMs ?? limits.hintWindowMs,
      segmentBytes: limits.hintSegmentBytes,
      partitionOf: (key) => partitionOfToken(tokenOf(key), partitionBits),
    });
    cleanups.push(() => hints.close());
    const scheme = options.tls ? 'wss' : 'ws';
    let supervisor: Supervisor | undefined;
    const status = (): StatusJson => supervisor!.status();
    const metrics = new NodeMetrics(status, () => supervisor!.telemetry());
    // The dashboard at / and its live feed (lib/http/dashboard-*.ts).
    const feed = new LiveFeed({ status, requests: () => metrics.requests.snapshot(), logger, ...(options.clientToken ? { token: options.clientToken } : {}) });
    cleanups.push(() => feed.close());
    const tls = options.tls ? { certFile: options.tls.certFile, keyFile: options.tls.keyFile } : undefined;
    const server = await startTransportServer({
      host,
      port: options.port ?? 7070,
      nodeId: identity.id,
      secret,
      logger,
      ...(options.clientToken ? { clientToken: options.clientToken } : {}),
      ...(tls ? { tls } : {}),
      onPeer: (link) => (supervisor ? supervisor.addPeerLink(link) : link.close(1013, 'starting')),
      onClient: (link) => (supervisor ? supervisor.addClientLink(link) : link.close(1013, 'starting')),
      onHttp: createHttpHandler(status, metrics, logger, {
        repair: (partition) => supervisor!.repair(partition),
        cleanup: () => supervisor!.cleanup(),
        merkleRoots: (partitions, held) => supervisor!.merkleRoots(partitions, held),
        leave: () => supervisor!.leave(),
        removeNode: (id) => supervisor!.removeNode(id),
        scaling: scalingActionsOf(() => supervisor!.scaling),
        ...(options.clientToken ? { token: options.clientToken } : {}),
      }, dashboardRoutes(feed)),
    });
    cleanups.push(() => server.close());
    const advertiseHost = host === '0.0.0.0' || host === '::' ? lanAddress() : host;
    const address = options.advertise ?? `${advertiseHost}:${server.port}`;
    let onRefused: (error: RingkvError) => void = () => undefined;
    const refused = new Promise<RingkvError>((resolve) => (onRefused = resolve));
    let onLeft: () => void = () => undefined;
    const left = new Promise<void>((resolve) => (onLeft = resolve));
    supervisor = new Supervisor({
      onLeft: () => onLeft(),
      onRefused: (error) => onRefused(error),
      ...(restored ? { restored } : {}),
      ...(replacing !== undefined ? { replacing: true } : {}),
      startFacts: { fresh: previous === undefined || replacing !== undefined, previousGeneration: previous?.generation },
      identity,
      dir,
      store,
      clock,
      rng: new SeededRng(randomInt(0x7fffffff)),
      logger: logger.child({ node: identity.id }),
      address,
      seeds: options.seeds ?? [],
      dc: options.dc ?? 'dc1',
      rack: options.rack ?? 'rack1',
      weight: options.weight ?? 1,
      partitionBits,
      replication,
      scheme,
      secret,
      observer: metrics,
      hints,
      ...(options.quorum ? { quorum: options.quorum } : {}),
      ...(options.antiEntropyIntervalMs !== undefined ? { antiEntropyIntervalMs: options.antiEntropyIntervalMs } : {}),
      ...(options.antiEntropySweepPeriodMs !== undefined ? { antiEntropySweepPeriodMs: options.antiEntropySweepPeriodMs } : {}),
      ...(options.tombstoneGraceMs !== undefined ? { tombstoneGraceMs: options.tombstoneGraceMs } : {}),
      ...(options.autoCleanupIntervalMs !== undefined ? { autoCleanupIntervalMs: options.autoCleanupIntervalMs } : {}),
      ...(options.autoCleanupSettleMs !== undefined ? { autoCleanupSettleMs: options.autoCleanupSettleMs } : {}),
      ...(options.handoffBytesPerSecond !== undefined ? { handoffBytesPerSecond: options.handoffBytesPerSecond } : {}),
      version: packageVersion(),
      scaling: scalingOptionsOf(options, dir),
      ...(options.tls?.caFile ? { caFile: options.tls.caFile } : {}),
      ...(options.gossipIntervalMs ? { gossipIntervalMs: options.gossipIntervalMs } : {}),
      ...(options.clockSkewMs !== undefined ? { clockSkewMs: options.clockSkewMs } : {}),
    });
    const sup0 = supervisor;
    cleanups.push(() => sup0.close());
    supervisor.start();
    await supervisor.checkStart(); // lifecycle: rejects when this directory does not match the cluster
    const resp =
      options.respPort === undefined
        ? undefined
        : await startRespFrontDoor({ host, port: options.respPort, supervisor, store, logger, clientToken: options.clientToken, tcpPort: server.port, version: packageVersion(), clock });
    if (resp) cleanups.push(() => resp.close());
    logger.info({ node: identity.id, address, generation: identity.generation, dir, shards: store.shards, ...(resp ? { respPort: resp.port } : {}) }, 'node started');
    const sup = supervisor;
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        await resp?.close();
        feed.close();
        await sup.close();
        await server.close();
        hints.close();
        await store.close();
      })());
    // A node that left the cluster closes itself (the CLI's `start` then exits 0).
    const leftAndClosed = left.then(() => close());
    const refusedAndClosed = refused.then(async (error) => (await close(), error));
    return {
      id: identity.id,
      left: leftAndClosed,
      refused: refusedAndClosed,
      port: server.port,
      address,
      url: `${scheme}://${address}`,
      ...(resp ? { respPort: resp.port } : {}),
      status: () => sup.status(),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    throw error;
  }
}

/**
 * The node id `replace` names, or undefined when not replacing: a directory that already was a
 * member's ignores it (a restart after the replace, as Cassandra's _first_boot).
 */
async function replaceTargetOf(options: NodeOptions, restored: MembershipView | undefined, logger: Logger): Promise<string | undefined> {
  if (options.replace === undefined) return undefined;
  if (restored !== undefined && restored.self !== 'joining') {
    logger.info({ replace: options.replace }, 'this data directory already belongs to a member: --replace ignored');
    return undefined;
  }
  const scheme = options.tls ? 'wss' : 'ws';
  return resolveReplaceTarget({ target: options.replace, seeds: options.seeds ?? [], scheme, ...(options.tls?.caFile ? { caFile: options.tls.caFile } : {}), timeoutMs: limits.replaceLookupMs, clock: systemClock });
}

/** Reads a secret file (the CLI's --secret-file): its bytes, trailing newline removed. */
export function readSecretFile(path: string): Uint8Array {
  const bytes = readFileSync(path);
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  if (end === 0) throw new RangeError(`secret file ${path} is empty`);
  return bytes.subarray(0, end);
}
