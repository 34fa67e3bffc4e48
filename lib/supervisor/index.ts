/**
 * lib/supervisor: the node's main-thread actor — it wires membership, the ring, the
 * coordinator, the shards and the network (layer 5).
 */
export { planIdentity, readNodeIdentity, startIdentity, writeNodeIdentity, type NodeIdentity } from './node-identity.js';
export { readMembershipFile, isOwnerStatus, MEMBERS_FILE_NAME, resolveReplaceTarget, type MembershipView } from './lifecycle/index.js';
export { Supervisor, type SupervisorOptions } from './supervisor.js';
export { buildStatus, type StatusJson, type StatusMember, type StatusShard } from './status.js';
export { type ClientOperations, type ReadResult, type RequestObserver } from './client-service.js';
export { HintStore, decodeHint, encodeHint, hintRecordVersion, type Hint, type HintStoreOptions, type HintSummary } from './hint-store.js';
export { AntiEntropy, isAntiEntropyMessage, type AntiEntropyOptions, type AntiEntropyStats, type CleanupResult } from './anti-entropy.js';
