/**
 * lib/plan: staged membership plans (Riak's `cluster plan` / `commit`): the ring a list of
 * joins, leaves and replacements leads to, computed by lib/ring, with the warnings and the
 * refusals that keep a commit safe. Pure logic (layer 2); the executor that applies a
 * committed plan is lib/supervisor/scaling/plan-service.ts.
 */
export * from './staged-plan.js';
export * from './plan-safety.js';
