/**
 * lib/membership: who is in the cluster and who is alive, by gossip and a phi accrual failure
 * detector. Pure logic (layer 2): time, randomness and the network are the caller's.
 */
export * from './member-state.js';
export * from './phi-accrual-detector.js';
export * from './gossip-message.js';
export * from './member-table.js';
export * from './gossip.js';
