/**
 * lib/ring: consistent-hash placement. Keys → tokens → Q fixed partitions; partitions →
 * owners by balanced weighted rendezvous claim; preference lists walked clockwise over
 * distinct nodes, racks and datacenters; ring diffs for handoff. Pure logic (layer 1).
 */
export * from './partition.js';
export * from './member.js';
export * from './claim.js';
export * from './preference-list.js';
export * from './ring.js';
