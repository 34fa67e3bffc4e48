/**
 * lib/replication: quorum coordination (Dynamo §4.5–4.6) — consistency levels, the quorum
 * tally, the replica RPC messages and their validation, the rid tables for retried and hedged
 * writes, the latency estimates that time hedges, and
 * the sans-IO Coordinator that drives gets and puts. Pure logic (layer 2): imports lib/base,
 * lib/causality and lib/ring only; time and the network are the caller's.
 */
export * from './consistency-level.js';
export * from './quorum-tally.js';
export * from './replica-message.js';
export * from './rid-table.js';
export * from './read-merge.js';
export * from './missed-replicas.js';
export * from './coordinator.js';
export * from './latency-estimator.js';
export * from './duplicate-dots.js';
export * from './sole-read.js';
