/**
 * The RESP front door of a node: the RESP listener (lib/transport) with the command service
 * (lib/resp) over this node's coordinator. Owned by startNode (main thread).
 *
 * Writes get a fresh rid each (a random 8-byte prefix per node start and a counter), so the
 * coordinator's retry table never confuses two of them. DBSIZE and INFO's keyspace are
 * estimates: a sample of partitions is scanned (tombstones and expired values included) and
 * scaled to the whole ring and to the share of it this node replicates; the figure is kept
 * for respDbsizeCacheMs.
 */

import { randomBytes } from 'node:crypto';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { limits } from '../base/limits.js';
import { ridBytes } from '../replication/index.js';
import { RespService, type RespOperations } from '../resp/index.js';
import type { ReplicaStore } from '../store/index.js';
import type { Supervisor } from '../supervisor/index.js';
import { RespListener } from '../transport/resp-listener.js';

export interface RespFrontDoorOptions {
  host: string;
  port: number;
  supervisor: Supervisor;
  store: ReplicaStore;
  logger: Logger;
  clientToken: string | undefined;
  tcpPort: number;
  version: string;
  /** The node's clock: EXAT/PXAT and CLIENT ages (wall), the DBSIZE cache (monotonic). */
  clock: Clock;
}

const sampledEntriesMax = 10_000;
const dbsizeCacheMs = 10_000;

/** Rids for RESP writes: a per-process random prefix and a counter. */
function ridSource(): () => Uint8Array {
  const prefix = randomBytes(ridBytes - 8);
  let counter = 0;
  return () => {
    const rid = new Uint8Array(ridBytes);
    rid.set(prefix, 0);
    counter++;
    // Big-endian counter in the last 8 bytes, written byte by byte (no DataView per write).
    let rest = counter;
    for (let i = ridBytes - 1; i >= ridBytes - 8; i--) {
      rid[i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
    return rid;
  };
}

function operationsOf(options: RespFrontDoorOptions): RespOperations {
  const { supervisor, store } = options;
  const driver = supervisor.requests;
  const nextRid = ridSource();
  let estimate: { keys: number; atMs: number } | undefined;
  const estimateKeys = async (): Promise<number> => {
    if (estimate !== undefined && options.clock.monotonicMs() - estimate.atMs < dbsizeCacheMs) return estimate.keys;
    const status = supervisor.status();
    const partitions = 2 ** status.partitionBits;
    // Scan partitions in order until a budget of entries is seen, then scale up.
    let keys = 0;
    let sampled = 0;
    while (sampled < partitions && keys < sampledEntriesMax) {
      keys += (await store.scanPartition(sampled, { limit: limits.scanEntriesMax })).entries.length;
      sampled++;
    }
    const n = typeof status.replication === 'number' ? status.replication : Object.values(status.replication).reduce((a, b) => a + b, 0);
    const members = Math.max(1, status.members.filter((m) => m.status !== 'left').length);
    const keysTotal = sampled === 0 ? 0 : (keys / sampled) * partitions * Math.max(1, members / n);
    estimate = { keys: keysTotal, atMs: options.clock.monotonicMs() };
    return keysTotal;
  };
  return {
    clientToken: options.clientToken,
    read: (key, consistency) => driver.read({ key, consistency }),
    readNow: (key, consistency) => driver.readNow(key, undefined, consistency),
    plainRead: (bytes, start, end) => driver.plainRead(bytes, start, end),
    write: (key, value, o) =>
      // One literal, absent options left undefined: no object spread per write.
      driver.put({ key, value, rid: nextRid(), sole: true, context: o.context, consistency: o.consistency, ttlMs: o.ttlMs, overwrite: o.overwrite === true, keepTtl: o.keepTtl === true }),
    expiryNowMs: () => driver.expiryNowMs(),
    wallMs: () => options.clock.wallMs(),
    estimateKeys,
    info: () => {
      const status = supervisor.status();
      const live = status.members.filter((m) => m.status !== 'left');
      const n = typeof status.replication === 'number' ? status.replication : Object.values(status.replication).reduce((a, b) => a + b, 0);
      return {
        nodeId: status.node,
        version: options.version,
        uptimeMs: status.uptimeMs,
        tcpPort: options.tcpPort,
        members: live.length,
        membersUp: live.filter((m) => m.up).length,
        replication: { n, r: Math.floor(n / 2) + 1, w: Math.floor(n / 2) + 1 },
        loadBytes: status.shards.reduce((sum, s) => sum + s.liveBytes, 0),
      };
    },
  };
}

/** Starts the RESP listener of a node. */
export async function startRespFrontDoor(options: RespFrontDoorOptions): Promise<RespListener> {
  const service = new RespService(operationsOf(options));
  const store = options.store;
  const beforeInput = store.poll === undefined ? undefined : (): void => store.poll!();
  const listener = await RespListener.start({ host: options.host, port: options.port, handler: service, logger: options.logger, clock: options.clock, beforeInput }, service.open);
  service.attach(listener);
  return listener;
}
