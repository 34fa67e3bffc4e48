/**
 * lib/autoscale: the autoscaling policy (load in, decisions out) and the load reports and
 * decision records nodes gossip for it. Pure logic (layer 2); the driver, the load gossip
 * and the provisioners live with the supervisor (lib/supervisor/scaling).
 */
export * from './load-report.js';
export * from './policy.js';
