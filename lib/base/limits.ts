/**
 * Every bound and default in ringkv, in one place (TigerBeetle: "put a limit on everything";
 * LevelDB's config:: constants). Names end in their unit. Relations between limits are
 * asserted at load, so an edit that breaks one fails at start-up, not in production.
 *
 * Limits on keys, values, siblings and contexts apply on client paths only: handoff, repair
 * and anti-entropy must carry whatever a replica already holds (RELIABILITY.md §2.5).
 * Areas add their own section; keep each section's names prefixed by nothing but its unit.
 */

import { totalmem } from 'node:os';
import { assert } from './assert.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export const limits = {
  // --- keys and values (client path) ---
  /** Default largest key accepted from a client. */
  keyBytesMax: 1 * KiB,
  /** The hard ceiling a configuration may raise keyBytesMax to (Cassandra's 65535). */
  keyBytesCeiling: 64 * KiB - 1,
  /** Largest value accepted from a client. */
  valueBytesMax: 1 * MiB,
  /** Largest number of operations in one batch. */
  batchOpsMax: 10_000,
  /** Largest total payload of one batch. */
  batchBytesMax: 16 * MiB,

  // --- storage engine ---
  /**
   * Memtable size at which it is frozen and flushed (two at most per engine). 64 MiB, as the
   * write buffer LevelDB is benchmarked with: a group commit of a thousand 10 KiB writes is
   * 10 MiB, and with 8 MiB every group froze the memtable (a new log, a flush, a manifest).
   */
  memtableBytesDefault: 64 * MiB,
  memtableBytesMin: 64 * KiB,
  memtableBytesMax: 1024 * MiB,
  /** Target uncompressed size of an SSTable data block. */
  blockBytesDefault: 4 * KiB,
  /** Bloom filter bits per key: ~1% false positives at 10. */
  bloomBitsPerKeyDefault: 10,
  /** Block cache capacity per engine. */
  blockCacheBytesDefault: 32 * MiB,
  /**
   * A node's row cache (lib/store/row-cache.ts: stored objects on the main thread);
   * `--row-cache-mb`. The default is a twenty-fourth of the memory the process may use (the
   * machine's, or its container's limit), within [rowCacheBytesDefaultMin, rowCacheBytesHeldMax]
   * (rowCacheBytesDefault(); its arena may take half again as much); memory is taken as entries
   * come. Budgets up to rowCacheBytesMax are accepted; the cache holds at most
   * rowCacheBytesHeldMax (its arena's offsets are 30-bit integers).
   */
  rowCacheBytesDefaultMin: 64 * MiB,
  rowCacheBytesHeldMax: 512 * MiB,
  rowCacheBytesMax: 16 * 1024 * MiB,
  /**
   * A shard's presence filter (lib/shard/presence-filter.ts: "no such key" answered on the
   * main thread): sized at shard start for twice the keys its engine holds, at least
   * presenceKeysMin (about 2 MiB) and at most presenceKeysMax (32 MiB); past its capacity it
   * turns itself off until the shard restarts.
   */
  presenceKeysMin: 1 << 20,
  presenceKeysMax: 1 << 24,
  /** Target size of one SSTable produced by compaction. */
  tableBytesTarget: 4 * MiB,
  /** Largest encoded record in the commit log (one write batch). */
  walRecordBytesMax: 64 * MiB,
  /** Largest stored entry (internal key + value) the engine accepts on any path. */
  entryBytesMax: 32 * MiB,
  /** Level-0 table count that triggers a compaction. */
  level0CompactionTrigger: 4,
  /** Level-0 table count at which each write batch is delayed. */
  level0SlowdownTrigger: 8,
  /** Level-0 table count at which writes stop until compaction catches up. */
  level0StopTrigger: 12,
  /** Delay added to each write batch while slowed down. */
  writeSlowdownMs: 1,
  /** Longest a write waits in a stall before failing with KV_OVERLOADED. */
  writeStallTimeoutMs: 30_000,
  /** Size of level 1; each further level is levelSizeMultiplier times larger. */
  level1BytesMax: 10 * MiB,
  levelSizeMultiplier: 10,
  /** Number of levels, L0 included. */
  levelCount: 7,
  /** Largest number of entries one partition scan returns per call. */
  scanEntriesMax: 10_000,
  /** Largest number of pending writes queued for the next group commit. */
  pendingWritesMax: 100_000,
  /** Values of at least this size are kept in the value log, tables hold pointers (key-value separation). */
  valueSeparationBytesDefault: 1 * KiB,
  /** Value-log GC collects a file when at most this share of its bytes is live. */
  valueLogGcLiveRatioDefault: 0.5,
  /** Value-log GC rewrites live values at most this fast (pacing). */
  valueLogGcBytesPerSecondDefault: 32 * MiB,
  /** Live values rewritten per value-log GC step (one commit-log record each). */
  valueLogGcSliceBytes: 4 * MiB,
  /** A value-log file found mostly live is checked again after this many flushes. */
  valueLogGcRecheckFlushes: 4,

  // --- causality ---
  /** Most siblings a key may hold after a client write (KV_TOO_MANY_SIBLINGS); replica merges are never limited. */
  siblingsMax: 100,
  /**
   * Most entries in a causal context (KV_BAD_CONTEXT beyond), and most actors a client write may
   * grow a key's version vector to. Must exceed the number of nodes that ever coordinate writes
   * to one key: there is no pruning (C9). At most 65535 (a u16 in the context codec).
   */
  contextEntriesMax: 64,
  /** Longest actor (node) id, in UTF-8 bytes. At most 255 (a u8 in the codecs). */
  actorIdBytesMax: 64,

  // --- placement ---
  /** log2 of the default partition count Q. */
  partitionBitsDefault: 10,
  partitionBitsMax: 16,
  partitionBitsMin: 1,
  /** Default replica count N (Dynamo's N=3). */
  replicationDefault: 3,
  /** Most replicas of one partition (N, or the sum of the per-datacenter counts). */
  replicationMax: 16,

  // --- membership ---
  /** How often a node bumps its heartbeat and starts a gossip exchange. */
  gossipIntervalMs: 1_000,
  /** Live peers gossiped to per interval (plus, now and then, a seed and an unreachable node). */
  gossipFanout: 3,
  /** Most digests, entries or requests in one gossip message; at least membersMax. */
  gossipEntriesMax: 1_024,
  /** Most members (self and left tombstones included) one node tracks. */
  membersMax: 1_000,
  /** Longest member (node) id, in UTF-8 bytes; a node id may become a version-vector actor id. */
  memberIdBytesMax: 64,
  /** Longest member address (host:port or URL), in UTF-8 bytes. */
  memberAddressBytesMax: 256,
  /** Longest datacenter or rack name, in UTF-8 bytes. */
  memberLabelBytesMax: 64,
  /** Largest member weight (a node with weight w owns about w times as many vnodes). */
  memberWeightMax: 1_000,
  /** Generations and heartbeats stay at or below this (exact in a double, with room to bump). */
  generationMax: 2 ** 48,
  heartbeatMax: 2 ** 48,
  /** Largest generation jump accepted for a known member (Cassandra: one year of seconds). */
  generationJumpMax: 365 * 86_400,
  /** Phi above which a silent member is convicted (Cassandra's phi_convict_threshold). */
  phiConvictThreshold: 8,
  /** Inter-arrival times kept per member (Cassandra's ArrivalWindow). */
  arrivalWindowSize: 1_000,
  /** First sample of every window: errs high so a new member is not convicted early. */
  arrivalBootstrapIntervalMs: 2_000,
  /** Longer inter-arrival gaps are outages, not samples, and are not recorded. */
  arrivalIntervalMaxMs: 10_000,
  /** Our own tick may be this late before it counts as a local pause (GC, SIGSTOP, lag). */
  selfLagToleranceMs: 2_000,
  /** After a local pause nobody is convicted for this long, so fresh heartbeats can arrive. */
  selfLagGraceMs: 5_000,
  /** How long a left member is kept as a tombstone so stale gossip cannot resurrect it. */
  leftMemberRetentionMs: 3 * 86_400_000,

  // --- replication (coordinator, lib/replication) ---
  /** Default R and W (Dynamo's R=2, W=2 with N=3). */
  readQuorumDefault: 2,
  writeQuorumDefault: 2,
  /** A coordinated request's deadline when the client gives none, and the largest it may give. */
  coordinatorTimeoutMsDefault: 5_000,
  coordinatorTimeoutMsMax: 600_000,
  /** Most requests one node coordinates (or forwards) at once; KV_OVERLOADED beyond. */
  coordinatorRequestsMax: 10_000,
  /** Most times a client write is forwarded towards a replica before KV_UNAVAILABLE. */
  forwardHopsMax: 2,
  /** A forwarded write gets this much less time than its forwarder, so its outcome arrives first. */
  forwardTimeoutMarginMs: 100,
  /**
   * Answered writes a coordinator keeps waiting for their remaining replicas' acks (until each
   * answered or the deadline), to hint the replicas that missed them; past it a write settles
   * at once and its silent replicas get a hint straight away (harmless if they ack later).
   */
  coordinatorLingeringPutsMax: 10_000,
  /** Write ids (rids) whose outcome a coordinator remembers for retries, and for how long. */
  ridEntriesMax: 100_000,
  ridRetentionMs: 10 * 60_000,
  /** Most retries of one rid that may wait on it while it is in flight. */
  ridWaitersMax: 16,

  // --- fast failover (tail at scale: hedged requests; lib/replication, lib/client) ---
  /**
   * A request not answered within its hedge delay is also sent to another replica (coordinator
   * reads) or node (client). The delay tracks each node's observed latency as srtt + 4·rttvar
   * (RFC 6298's estimator, near the p99 of a steady node), clamped to [min, max]; a node
   * never measured gets `hedgeDelayMsInitial`.
   */
  hedgeDelayMsMin: 25,
  hedgeDelayMsMax: 500,
  hedgeDelayMsInitial: 100,
  /** An attempt unanswered for `attemptTimeoutFactor` hedge delays, clamped to [min, max], marks its node suspect. */
  attemptTimeoutFactor: 4,
  attemptTimeoutMsMin: 500,
  attemptTimeoutMsMax: 2_000,
  /**
   * Hedges are rationed so that an overloaded cluster is not sent twice the work: each request
   * earns `hedgeBudgetRatio` of a hedge, at most `hedgeBudgetBurst` saved (Dean and Barroso
   * hedge a few percent of requests).
   */
  hedgeBudgetRatio: 0.1,
  hedgeBudgetBurst: 10,
  /** A replica that finds one client write minted twice tries this often, this far apart, to drop the loser. */
  duplicateDropAttemptsMax: 3,
  duplicateDropRetryMs: 1_000,
  /**
   * A superseded event minted for a retried client write (attempt >= 1) is remembered in its key's stored
   * object (lib/causality mint-records.ts) this long, measured against the object's newest
   * write, and at most this many per actor: a twin of it arriving later (by hint,
   * anti-entropy or read repair, from a coordinator that went silent after applying the
   * write) is dropped instead of returning as an old sibling. The hint window: a node silent
   * longer than that is repaired by anti-entropy and its stale twins can return.
   */
  mintRecordRetentionMs: 3 * 3_600_000,
  /** The same for a superseded first attempt, whose twin can only be a hedge minted while it was in flight. */
  mintRecordFirstRetentionMs: 60_000,
  mintRecordsPerActor: 2,
  /**
   * Retry records kept per actor: a coordinator cut off for a while leaves a twin of every
   * write its clients retried elsewhere meanwhile (about 34 bytes each, only on keys written
   * through such a failover, for at most mintRecordRetentionMs of their history).
   */
  mintRetryRecordsPerActor: 64,
  /** Client write ids a replica remembers from replica writes (any coordinator's), and for how long. */
  replicaRidEntriesMax: 100_000,
  replicaRidRetentionMs: 10 * 60_000,
  /** Longest error message carried in a replica reply, in UTF-16 code units. */
  replicaMessageCharsMax: 1_024,

  // --- anti-entropy (Merkle exchanges, lib/antientropy) ---
  /** log2 of the Merkle leaves per partition tree: 4096 segments of its token range, ~35 KiB per tree. */
  merkleLeafBitsDefault: 12,
  /** Most leaf bits (partitionBits + leaf bits ≤ 32 as well); 2^16 leaves cost ~560 KiB per tree. */
  merkleLeafBitsMax: 16,
  /** log2 of an interior node's fanout (16 children). */
  merkleFanoutBitsDefault: 4,
  merkleFanoutBitsMax: 8,
  /** Most parents in one hashes request, and most leaves in one list request. */
  antiEntropyNodesPerRequestMax: 4_096,
  /** Default keys per fetch or push round of one exchange. */
  antiEntropyKeysPerRoundDefault: 256,
  /** Most keys in one fetch or push message. */
  antiEntropyKeysPerMessageMax: 4_096,
  /** Most entries in one leaf listing reply (whole leaves only: a larger leaf fails the exchange). */
  antiEntropyListEntriesMax: 100_000,
  /** Fetch replies and push messages add objects while under this size (at least one object). */
  antiEntropyMessageBytesSoft: 4 * MiB,
  /** Default keys one exchange transfers before it stops as partial (the next one continues). */
  antiEntropyKeysPerExchangeDefault: 1_000_000,
  /** A request of an exchange not answered within this fails the exchange. */
  antiEntropyRequestTimeoutMs: 30_000,
  /** Default rate (both directions) of one node's anti-entropy traffic, and its burst. */
  antiEntropyBytesPerSecondDefault: 8 * MiB,
  antiEntropyBurstBytesDefault: 1 * MiB,
  /** How often a node starts one scheduled exchange (one partition, one peer replica), at most... */
  antiEntropyIntervalMsDefault: 10_000,
  /**
   * ...and sooner when needed so that every (partition, peer replica) pair of a node is
   * exchanged once per sweep period (default one hour; `ringkv start --anti-entropy-sweep-seconds`).
   */
  antiEntropySweepPeriodMsDefault: 3_600_000,
  antiEntropySweepPeriodMsMin: 1_000,
  antiEntropySweepPeriodMsMax: 30 * 86_400_000,
  /** Gap between exchanges of dirty partitions (writes a peer missed) once that peer is back. */
  antiEntropyDirtyGapMs: 20,
  /** The dirty-partition file is rewritten at most this often (and at close). */
  antiEntropyDirtySaveIntervalMs: 1_000,
  /** Partition snapshots (tree + leaf listing) a responder keeps for exchanges in progress, and for how long. */
  antiEntropySnapshotsMax: 16,
  antiEntropySnapshotTtlMs: 30_000,
  /** Entries per scan page while a snapshot is built. */
  antiEntropyScanPageEntries: 4_096,
  /** Automatic cleanup (supervisor/auto-cleanup.ts): a pass every this often (0: only `ringkv cleanup`)... */
  autoCleanupIntervalMsDefault: 30_000,
  /** ...and no sooner than this after the last ring change, so the new owners' own pulls go first. */
  autoCleanupSettleMsDefault: 60_000,
  /** Tombstones are kept at least this long after the delete (Cassandra's gc_grace_seconds). */
  tombstoneGraceMsDefault: 10 * 86_400_000,
  /** An exchange counts for a tombstone only if it started this long after the delete's timestamp. */
  tombstoneClockSkewMarginMs: 60_000,
  /** A tombstone purge pass over one partition runs after every this many scheduled exchanges (and after `repair`). */
  tombstonePurgeEveryTicks: 4,
  /** Most tombstones whose first-seen time the purge pass keeps in memory; untracked ones wait (never purged early). */
  tombstonesTrackedMax: 262_144,
  /** A node's "last alive" time (supervisor/liveness.ts) is rewritten every grace/4, clamped to these bounds. */
  livenessRefreshMsMin: 100,
  livenessRefreshMsMax: 60_000,
  /** A resyncing node (supervisor/resync.ts) retries its partitions not yet exchanged with every up peer this often. */
  resyncRetryMs: 2_000,
  /** How often a resyncing node looks again for its partitions while it does not know the ring yet. */
  resyncRingPollMs: 100,

  // --- mailbox ---
  /**
   * Data capacity of one mailbox (one direction of one shard); a power of two. 16 MiB holds a
   * thousand 10 KiB requests or replies in flight: with less, frames wait in a backlog (an
   * allocation and a copy each, and a wake-up per batch of space) — the Store's 10 KiB stall.
   */
  mailboxBytesDefault: 16 * MiB,
  mailboxBytesMin: 64,
  mailboxBytesMax: 1024 * MiB,
  /** Longest an async mailbox write waits for space before failing with KV_OVERLOADED. */
  mailboxWriteTimeoutMs: 5_000,
  /** Longest one Atomics.waitAsync sleep lasts before re-checking: the net under a lost wake-up. */
  mailboxWaitSliceMs: 1_000,
  /** Most frames one drain visits before the consumer yields to its event loop. */
  mailboxDrainFramesMax: 4_096,

  // --- membership-change handoff (lib/supervisor/handoff.ts) ---
  /** Most entries in one handoff stream page (pull on join/remove, push on leave). */
  handoffPageEntries: 256,
  /** A stream page stops adding objects past this size (at least one object). */
  handoffPageBytesSoft: 4 * MiB,
  /** Partitions streamed at once by one node. */
  handoffConcurrentPartitions: 8,
  /** A handoff rpc (page, hello, ring check) not answered within this fails and is retried. */
  handoffRequestTimeoutMs: 30_000,
  /** Pause before a failed partition transfer is retried. */
  handoffRetryDelayMs: 500,
  /** Longest a join/leave waits for every up member to adopt the new ring before its catch-up exchanges. */
  handoffRingWaitMs: 30_000,
  /** Pace of one node's handoff steps (pages and catch-up exchanges), bytes plus step costs per second (handoff-transfers.ts); 2 MiB/s keeps a join within about +20-30% foreground p99 on 2 shared cores (perf/handoff.ts). */
  handoffBytesPerSecondDefault: 2 * MiB,
  /** Burst of that token bucket. */
  handoffBurstBytesDefault: 256 * KiB,
  /** Fixed cost charged per handoff step besides its bytes: an rpc with a partition scan at each end. */
  handoffStepCostBytes: 32 * KiB,
  /** Catch-up Merkle exchanges one node runs at once after a join or leave. */
  handoffCatchUpConcurrent: 4,
  /** Objects of one pulled page merged at once. */
  handoffMergesInFlight: 16,

  // --- staged plans and autoscaling (lib/plan, lib/autoscale, lib/supervisor/scaling) ---
  /** Most changes one staged plan holds. */
  planChangesMax: 64,
  /** Most committed plans waiting behind the one executing (each is re-planned when its turn comes). */
  planQueueMax: 8,
  /** How often the plan executor checks whether the cluster settled or a step completed. */
  planPollMs: 500,
  /** A plan step (one join, leave or removal and the transfers after it) not complete within this fails the plan. */
  planStepTimeoutMs: 30 * 60_000,
  /** Executed plans remembered for `ringkv plan` and /status. */
  planHistoryMax: 16,
  /** How often a node samples its load and gossips load reports to scaleGossipFanout peers. */
  scaleReportIntervalMs: 1_000,
  scaleGossipFanout: 2,
  /** A load report not refreshed within this is stale (its node counts as silent). */
  scaleReportStaleMs: 10_000,
  /** Latencies kept per report interval for the p99 (a reservoir beyond). */
  scaleLatencySamplesMax: 4_096,
  /** How often the autoscaler leader evaluates the policy. */
  autoscaleEvaluateIntervalMsDefault: 1_000,
  /** Defaults of `ringkv start --autoscale` (a 3 -> 4 -> 3 cycle within 10 minutes on 2 cores; raise them in production). */
  autoscaleMinNodesDefault: 3,
  autoscaleMaxNodesDefault: 8,
  autoscaleTargetOpsPerNodeDefault: 1_000,
  autoscaleScaleOutAboveDefault: 1.0,
  autoscaleScaleInBelowDefault: 0.4,
  autoscaleScaleOutWindowMsDefault: 60_000,
  autoscaleScaleInWindowMsDefault: 150_000,
  autoscaleCooldownMsDefault: 60_000,
  autoscaleDecisionTimeoutMsDefault: 15 * 60_000,
  autoscaleEluHighDefault: 0.9,
  autoscaleCapacityHighDefault: 0.8,
  /** A provisioner command (command:<program>) running longer than this is killed and the decision fails. */
  provisionerCommandTimeoutMs: 5 * 60_000,
  /** Output of a provisioner command kept for the log. */
  provisionerOutputBytesMax: 16 * KiB,
  /** How long the local provisioner waits for a node it started to print its listening line. */
  provisionerStartTimeoutMs: 60_000,

  // --- node lifecycle: restarts, founding, the start check (lib/supervisor/lifecycle) ---
  /** Longest the start check asks the seeds and remembered members before starting anyway (a whole cluster restarting at once). */
  startCheckWindowMs: 3_000,
  /** One start-check hello rpc not answered within this counts as no answer. */
  startCheckRpcTimeoutMs: 1_000,
  /** Pause between start-check rounds while nobody answers. */
  startCheckRetryMs: 200,
  /** ...and after the window, while the node waits (or runs) until a peer answers. */
  startCheckLateRetryMs: 1_000,
  /** Longest a founder (its address in its seeds) waits to meet the other seeds before founding without them. */
  foundingWaitMs: 10_000,
  /** Longest `--replace` looks for a seed that knows the member to replace. */
  replaceLookupMs: 30_000,

  // --- hinted handoff (lib/supervisor/hint-store.ts) ---
  /** Most bytes of undelivered hints kept for one target node; past it the node stops hinting for it. */
  hintBytesMaxPerTarget: 256 * MiB,
  /** Longest a target may owe hints (its oldest undelivered hint's age) before hinting for it stops (Cassandra's max_hint_window). */
  hintWindowMs: 3 * 3_600_000,
  /** Size at which a hint segment file is sealed and a new one started. */
  hintSegmentBytes: 8 * MiB,
  /** Hints sent to a recovered node per batch; batches go one at a time (the throttle). */
  hintDeliveryBatch: 256,
  /** How often the supervisor looks for recovered targets with hints. */
  hintDeliveryIntervalMs: 1_000,

  // --- transport (WebSocket wire, lib/transport) ---
  /** Largest WebSocket message (one frame of batched messages), sent or received; ws closes with 1009 beyond. */
  wireFrameBytesMax: 32 * MiB,
  /** Most messages in one frame. */
  wireMessagesPerFrameMax: 4_096,
  /** Most fragments one WebSocket message may arrive in (ws advisory GHSA-96hv-2xvq-fx4p). */
  wireFragmentsMax: 1_024,
  /** Queued plus socket-buffered bytes of one link above which send() fails with KV_OVERLOADED. */
  wireSendBufferBytesMax: 64 * MiB,
  /** A new connection must finish its handshake (peer auth or client hello) within this. */
  wireHandshakeTimeoutMs: 5_000,
  /** An HTTP request's headers (an upgrade included) must arrive within this (slowloris). */
  wireHeadersTimeoutMs: 10_000,
  /** A server-side link that receives no message for this long is closed. */
  wireIdleTimeoutMs: 120_000,
  /** How often each side pings an open link. */
  wirePingIntervalMs: 30_000,
  /** A link whose pong does not come back within this is terminated. */
  wirePingTimeoutMs: 10_000,
  /** First reconnect delay of a peer dialer; doubles per failed attempt, jittered. */
  wireReconnectBaseMs: 100,
  /** Largest reconnect delay of a peer dialer. */
  wireReconnectMaxMs: 10_000,
  /** How long connectClient waits for the connection and the 'welcome' by default. */
  wireConnectTimeoutMs: 10_000,
  /** On close, how long a server waits for its links' close handshakes before cutting them. */
  wireCloseGraceMs: 1_000,
  /** Most open WebSocket connections from one remote address (S7). */
  wireConnectionsPerAddressMax: 1_024,
  /** Refused handshakes (bad token or peer MAC) per remote address per window before its upgrades get 429. */
  wireAuthFailuresPerAddressMax: 10,
  wireAuthFailureWindowMs: 60_000,
  /** Remote addresses whose failed handshakes are counted at once (the oldest is forgotten past it). */
  wireAuthAddressesTrackedMax: 4_096,
  /** Most requests in flight on one client connection at a node; the excess get KV_OVERLOADED replies. */
  clientInflightMax: 1_024,

  // --- remote client (lib/client) ---
  /** Default budget of one client request, retries included; past it KV_TIMEOUT (indeterminate for writes). */
  clientRequestTimeoutMs: 10_000,
  /** Largest timeoutMs a caller may ask for. */
  clientRequestTimeoutMsMax: 600_000,
  /** Longest a client waits for a node's welcome. */
  clientConnectTimeoutMs: 5_000,
  /** How often a client re-reads the ring from a node. */
  clientRingRefreshMs: 10_000,
  /** Most nodes one request is tried on, the first choice included. */
  clientAttemptsMax: 3,
  /** Most requests waiting to be sent on one client connection (KV_OVERLOADED beyond). */
  clientQueueMax: 100_000,
  /** Reconnect backoff of a client connection: jittered, doubling from base to max. */
  clientReconnectBaseMs: 100,
  clientReconnectMaxMs: 5_000,
  /** A client pings an open connection that received nothing for this long; no answer within the timeout marks the node suspect. */
  clientPingIdleMs: 500,
  clientPingTimeoutMs: 1_000,
  /** Largest GET /status body the CLI reads (a 1000-member cluster at 2^16 partitions is ~2 MB). */
  clientStatusBytesMax: 64 * MiB,
  /** How long `ringkv dev-cluster` waits for its nodes to stop before SIGKILL. */
  cliChildStopTimeoutMs: 30_000,

  // --- dashboard and progress (lib/http, lib/cli) ---
  /** The dashboard's live feed takes one point per this while someone watches. */
  dashboardTickMs: 1_000,
  /** Chart points kept (5 minutes at one a second). */
  dashboardHistoryPoints: 300,
  /** Most open dashboard feeds (SSE streams) per node; more get 503. */
  dashboardSubscribersMax: 32,
  /** How long the feed waits for a peer's live sample before drawing it without one. */
  dashboardPeerTimeoutMs: 800,
  /** How often `ringkv repair | leave | removenode | status --watch` poll the node. */
  cliProgressPollMs: 500,
  /** Off a terminal, progress prints one plain line at most this often. */
  cliProgressLineMs: 5_000,

  // --- expiry (lib/causality/read-view.ts) ---
  /** Longest TTL a write may carry (about 285 years): expiry instants stay below 2^53. */
  ttlMsMax: 2 ** 53 - 2 ** 52,
  /**
   * Default bound on the wall-clock skew between nodes that expiry tolerates: a node judges
   * expiry at its clock plus this, so a value is never served after its expiry instant by any
   * node whose clock lags the writer's by up to this much; values vanish up to this early.
   */
  clockSkewMsDefault: 50,
  /** The largest skew bound a node may be configured with. */
  clockSkewMsMax: 60_000,

  // --- RESP listener (lib/transport/resp-listener.ts, lib/resp) ---
  /** Bytes of unparsed input one RESP connection may buffer (a partial frame); -ERR and close beyond. */
  respInputBytesMax: 64 * MiB,
  /** Largest bulk string a client may send (Redis's proto-max-bulk-len is 512 MiB; our values are far smaller). */
  respBulkBytesMax: 16 * MiB,
  /** Most arguments in one command (Redis allows 1M+; MSET of this many pairs is plenty). */
  respArgsMax: 1_048_576,
  /** Commands of one connection running at once; further input is paused until they finish. */
  respInflightMax: 1_024,
  /**
   * Commands of all connections running at once; past it every connection's input is paused
   * (left in the kernel's socket buffers) until the node catches up, so the memory a node
   * holds for requests is bounded whatever the number of pipelining clients (each request's
   * state otherwise lives, and is promoted by the GC, for as long as it waits).
   */
  respInflightTotalMax: 256,
  /** Reply bytes waiting for a slow reader past which the connection is not read until they drain. */
  respOutputBytesHigh: 16 * MiB,
  /** Most RESP connections a node accepts at once (Redis's maxclients is 10000). */
  respConnectionsMax: 10_000,
  /** Longest INFO/DBSIZE waits for shard statistics before answering without them. */
  respInfoTimeoutMs: 2_000,

  // --- shard actor (lib/shard) ---
  /**
   * Budget of a shard's version-header cache (header-cache.ts): each key's stored object
   * without its value bytes, so a put need not read the whole object. Estimated JS heap bytes,
   * about 250 per key with one actor and one sibling: 32 MiB holds about 130k keys. 0: off.
   */
  headerCacheBytesDefault: 32 * MiB,
  /**
   * Stored objects smaller than this are not cached: their read is a memtable or block-cache
   * hit and a decode of under 1 KiB, cheaper than keeping their headers (measured: at 100 B
   * values, caching every key cost 3-4 µs of CPU per put).
   * Objects at or over it hold a value the engine keeps in its value log (valueSeparationBytesDefault).
   */
  headerCacheObjectBytesMin: 1 * KiB,
} as const;

assert(limits.valueLogGcSliceBytes <= limits.batchBytesMax, 'a value-log GC slice is one write batch');
assert(limits.valueLogGcLiveRatioDefault > 0 && limits.valueLogGcLiveRatioDefault < 1, 'value-log GC ratio within (0, 1)');
assert(limits.keyBytesMax <= limits.keyBytesCeiling, 'keyBytesMax above its ceiling');
assert(limits.keyBytesCeiling + limits.valueBytesMax + 64 <= limits.entryBytesMax, 'entry cannot hold a max key and value');
assert(limits.entryBytesMax <= limits.walRecordBytesMax, 'a WAL record must hold the largest entry');
assert(limits.memtableBytesMin <= limits.memtableBytesDefault && limits.memtableBytesDefault <= limits.memtableBytesMax, 'memtable default out of range');
assert(
  limits.level0CompactionTrigger < limits.level0SlowdownTrigger && limits.level0SlowdownTrigger < limits.level0StopTrigger,
  'level-0 triggers must increase',
);
assert(limits.blockBytesDefault < limits.tableBytesTarget, 'a table holds many blocks');
assert(limits.partitionBitsDefault <= limits.partitionBitsMax && limits.partitionBitsMax <= 16, 'partition bits out of range');
assert(limits.ridEntriesMax > limits.coordinatorRequestsMax, 'the rid table must hold every request in flight');
assert(limits.hedgeDelayMsMin <= limits.hedgeDelayMsInitial && limits.hedgeDelayMsInitial <= limits.hedgeDelayMsMax, 'hedge delays out of order');
assert(limits.attemptTimeoutMsMin <= limits.attemptTimeoutMsMax && limits.hedgeDelayMsMax < limits.attemptTimeoutMsMax, 'attempt timeouts out of order');
assert(limits.wireFrameBytesMax >= limits.keyBytesCeiling + limits.valueBytesMax + 64 * KiB, 'a frame must hold the largest put');
assert(limits.wireSendBufferBytesMax >= limits.wireFrameBytesMax, 'a send buffer must hold the largest frame');
assert(limits.wireReconnectBaseMs <= limits.wireReconnectMaxMs, 'reconnect base above its max');
assert(
  limits.antiEntropySweepPeriodMsMin <= limits.antiEntropySweepPeriodMsDefault && limits.antiEntropySweepPeriodMsDefault <= limits.antiEntropySweepPeriodMsMax,
  'anti-entropy sweep period default out of range',
);

export type Limits = typeof limits;

/**
 * A node's row cache by default: a twenty-fourth of `memoryBytes` (the machine's memory, or
 * the container's limit when there is one), whole MiB, within [rowCacheBytesDefaultMin,
 * rowCacheBytesHeldMax].
 */
export function rowCacheBytesDefault(memoryBytes: number = processMemoryBytes()): number {
  const share = Math.floor(memoryBytes / 24 / (1024 * 1024)) * 1024 * 1024;
  return Math.min(limits.rowCacheBytesHeldMax, Math.max(limits.rowCacheBytesDefaultMin, share));
}

/** The memory this process may use: the machine's, or less under a cgroup limit (process.constrainedMemory). */
export function processMemoryBytes(): number {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  const total = totalmem();
  return constrained !== undefined && constrained > 0 && constrained < total ? constrained : total;
}
