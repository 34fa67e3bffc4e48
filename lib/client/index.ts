/**
 * lib/client: the remote client, `connect(urls, options)` (DESIGN.md §1 use 3, §5). Layer 5:
 * sockets and timers, over lib/transport's client links; placement with lib/ring.
 */
export { connect, type BatchOp, type BatchResult, type Client, type ClientSeams, type NodeHealth } from './client.js';
export type { GetResult, WriteResult } from './replies.js';
export { consistencyLevels, nodeUrlOf, type ClientOptions, type Consistency, type Key, type RequestOptions, type Value } from './request-options.js';
export { checkRingView, clusterViewOf, routeKey, type ClusterView, type RingView, type RingViewMember } from './ring-view.js';
export type { CallOutcome, ConnectFn } from './node-connection.js';
