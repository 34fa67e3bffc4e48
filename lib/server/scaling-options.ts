/**
 * The scaling options of startNode (staged joins, capacity, autoscaling; `ringkv start
 * --staged-join --capacity-gib --autoscale ...`), checked and turned into what the supervisor
 * and the HTTP routes take. Kept apart from start-node.ts so that file stays a list of parts.
 */

import { dirname, join } from 'node:path';
import type { PolicyConfig } from '../autoscale/index.js';
import type { PlanActions } from '../http/plan-routes.js';
import type { SupervisorOptions } from '../supervisor/index.js';
import { policyConfigOf, type Scaling } from '../supervisor/scaling/scaling.js';
import { validateProvisionerSpec } from '../supervisor/scaling/provisioner.js';

export interface AutoscaleNodeOptions extends Partial<PolicyConfig> {
  /** `local` (ringkv start processes on this machine) or `command:<program>`. */
  provisioner: string;
  /** local: the parent directory of new nodes' data (default: `autoscaled` next to this node's dir). */
  localDir?: string;
  /** local: the command running ringkv (default this package's CLI under this Node). */
  localCommand?: string[];
  /** local: flags every new node starts with besides --host/--port/--dir/--seeds. */
  localArgs?: string[];
  /** How often the leader evaluates the policy, ms (default limits.autoscaleEvaluateIntervalMsDefault). */
  evaluateIntervalMs?: number;
}

export interface ScalingNodeOptions {
  /** Join only when a committed plan names this node (`ringkv plan join <host:port>`, `ringkv commit`). */
  stagedJoin?: boolean;
  /** Bytes this node may store; the autoscaler scales out past capacityHigh of it. */
  capacityBytes?: number;
  /** Run the autoscaler (every member should; the lowest-id up, normal one acts). */
  autoscale?: AutoscaleNodeOptions;
  /** Load report interval (tests shorten it); default limits.scaleReportIntervalMs. */
  scaleReportIntervalMs?: number;
  /** Allow clients without a token on a non-loopback host (default: such a node refuses to start). */
  insecureClients?: boolean;
}

/** Checks the scaling options (TypeError/RangeError naming the field) and builds the supervisor's. */
export function scalingOptionsOf(options: ScalingNodeOptions, dir: string): NonNullable<SupervisorOptions['scaling']> {
  const { stagedJoin, capacityBytes, autoscale, scaleReportIntervalMs } = options;
  if (stagedJoin !== undefined && typeof stagedJoin !== 'boolean') throw new TypeError('stagedJoin must be a boolean');
  if (capacityBytes !== undefined && !(Number.isFinite(capacityBytes) && capacityBytes > 0)) throw new RangeError('capacityBytes must be a positive number');
  if (scaleReportIntervalMs !== undefined && !(Number.isInteger(scaleReportIntervalMs) && scaleReportIntervalMs >= 10)) throw new RangeError('scaleReportIntervalMs must be an integer >= 10');
  if (autoscale === undefined) return { ...(stagedJoin ? { stagedJoin } : {}), ...(capacityBytes ? { capacityBytes } : {}), ...(scaleReportIntervalMs ? { reportIntervalMs: scaleReportIntervalMs } : {}) };
  if (typeof autoscale !== 'object' || autoscale === null) throw new TypeError('autoscale must be an object');
  const { provisioner, localDir, localCommand, localArgs, evaluateIntervalMs, ...policy } = autoscale;
  validateProvisionerSpec(provisioner);
  policyConfigOf(policy);
  if (evaluateIntervalMs !== undefined && !(Number.isInteger(evaluateIntervalMs) && evaluateIntervalMs >= 10)) throw new RangeError('autoscale.evaluateIntervalMs must be an integer >= 10');
  for (const [name, list] of [['localCommand', localCommand], ['localArgs', localArgs]] as const) {
    if (list !== undefined && (!Array.isArray(list) || list.some((a) => typeof a !== 'string'))) throw new TypeError(`autoscale.${name} must be an array of strings`);
  }
  return {
    ...(stagedJoin ? { stagedJoin } : {}),
    ...(capacityBytes ? { capacityBytes } : {}),
    ...(scaleReportIntervalMs ? { reportIntervalMs: scaleReportIntervalMs } : {}),
    autoscale: {
      provisioner,
      policy,
      local: { dir: localDir ?? join(dirname(dir), 'autoscaled'), ...(localCommand ? { command: localCommand } : {}), ...(localArgs ? { args: localArgs } : {}) },
      ...(evaluateIntervalMs ? { evaluateIntervalMs } : {}),
    },
  };
}

/** The HTTP routes' view of the node's scaling part (built before the supervisor exists). */
export function scalingActionsOf(scaling: () => Scaling): PlanActions {
  return {
    stage: (type, node, replacement) => scaling().stage(type, node, replacement),
    show: () => scaling().show(),
    commit: () => scaling().commit(),
    clear: () => scaling().clear(),
    autoscaleStatus: () => scaling().autoscaleStatus(),
  };
}
