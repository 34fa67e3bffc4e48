/**
 * lib/supervisor/lifecycle: how a node starts, restarts and takes a dead member's place
 * (issue 10) — the persisted membership view (membership-file.ts), the start check against the
 * cluster's view (start-check.ts) and the gate that holds gossip until it passed
 * (start-gate.ts), and the `--replace` lookup (replace-target.ts). Layer 5, with the
 * supervisor.
 */
export { isOwnerStatus, MEMBERS_FILE_NAME, MembershipRecorder, readMembershipFile, type MembershipView } from './membership-file.js';
export { judgeStart, parseHelloView, runStartCheck, type HelloMember, type HelloView, type StartFacts } from './start-check.js';
export { StartGate, startCandidates, startGateFor, startStatus, type StartInput } from './start-gate.js';
export { resolveReplaceTarget, type ReplaceLookup } from './replace-target.js';
