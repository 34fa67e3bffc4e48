/**
 * lib/server: a cluster node in this process (`startNode`). Layer 6.
 */
export { readSecretFile, startNode, type NodeOptions, type RingkvNode } from './start-node.js';
export type { StatusJson, StatusMember, StatusShard } from '../supervisor/index.js';
