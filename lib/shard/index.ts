/**
 * lib/shard: the shard actor (one batch of request frames in, replies out after one group
 * commit) and its overlay of uncommitted objects, the mailbox frame sender, the arena request
 * frames are copied into, and the main-side comlink control channel. Layer 4.
 */
export { ShardActor, type ShardActorOptions } from './shard-actor.js';
export { FrameSender, type FrameSenderOptions } from './frame-sender.js';
export { FrameArena } from './frame-arena.js';
export { Overlay, type OverlayEntry } from './overlay.js';
export { HeaderCache, estimateBytes, type HeaderCacheStats } from './header-cache.js';
export { exposeBackgroundRunner, wrapShardControl, type ShardControl, type ShardControlApi, type ShardStats } from './control-channel.js';
export type { ShardStatusMessage, ShardWorkerData } from './shard-worker-data.js';
export { expireRecord, expiryFilterName, registerExpiryFilter } from './expiry-filter.js';
