/**
 * lib/causality: dotted version vector sets (Almeida et al. 2014) — a key's concurrent
 * siblings with their causal history — the causal context clients hold, and the stored-object
 * format the storage engine keeps per key. Layer 1: imports lib/base only.
 */
export { actorIdBytesCeiling, checkActorId, compareActors } from './actor-id.js';
export {
  counterMax,
  compareVectors,
  contextFormatVersion,
  counterOf,
  decodeContext,
  descends,
  encodeContext,
  mergeVectors,
  type VectorOrder,
  type VersionVector,
  type VersionVectorEntry,
} from './version-vector.js';
export {
  checkSet,
  discard,
  emptySet,
  join,
  lww,
  lwwWinner,
  siblingCount,
  sync,
  update,
  values,
  voidExpiresAtMs,
  type DvvEntry,
  type DvvSet,
  type Mint,
  type MintRecord,
  type Sibling,
} from './dvv-set.js';
export { settleMints } from './mint-records.js';
export {
  applyClientWrite,
  draftClientWrite,
  settleClientWrite,
  canPurge,
  freshCounterFloor,
  decodeObject,
  encodeObject,
  mergeReplicas,
  objectFormatVersion,
  SiblingKind,
  type ClientWrite,
  type ConflictPolicy,
  type StoredObject,
} from './stored-object.js';
export { applyClientWriteToHeaders, decodeHeaders, encodeHeaders, headersOf, headerValue, holdsExpiringValue, holdsHeaderValue, mergeIntoHeaders } from './version-headers.js';
export { expireValues, isExpired, readView, type ReadView } from './read-view.js';
