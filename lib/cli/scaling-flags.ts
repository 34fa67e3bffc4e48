/**
 * The `ringkv start` flags of staged joins and autoscaling, turned into startNode options;
 * and the flags a node started by the local provisioner inherits from this one (the same
 * cluster settings and autoscale knobs, so any member can lead). Owner: the CLI's main thread.
 */

import type { NodeOptions } from '../server/index.js';

export interface ScalingFlags {
  stagedJoin?: boolean;
  autoscale?: string;
  minNodes?: number;
  maxNodes?: number;
  targetOpsPerNode?: number;
  scaleOutAbove?: number;
  scaleInBelow?: number;
  scaleOutWindowSeconds?: number;
  scaleInWindowSeconds?: number;
  cooldownSeconds?: number;
  capacityGib?: number;
  autoscaleIntervalMs?: number;
  scaleInVictim?: 'least-loaded' | 'provisioner';
}

/** Flags (commander's camelCase name → --kebab-case) inherited by nodes the local provisioner starts. */
const inherited = [
  'autoscale', 'minNodes', 'maxNodes', 'targetOpsPerNode', 'scaleOutAbove', 'scaleInBelow', 'scaleOutWindowSeconds', 'scaleInWindowSeconds',
  'cooldownSeconds', 'scaleInVictim', 'capacityGib', 'autoscaleIntervalMs', 'shards', 'logLevel', 'secretFile', 'streamMibPerSecond', 'tombstoneGraceSeconds',
  'partitionBits', 'gossipIntervalMs', 'dc', 'rack', 'weight', 'tlsCert', 'tlsKey', 'tlsCa', 'insecureClients',
] as const;

const kebab = (name: string): string => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The start flags a locally provisioned node gets besides --host/--port/--dir/--seeds. */
export function inheritedArgs(flags: Record<string, unknown>): string[] {
  const args: string[] = [];
  for (const name of inherited) {
    const value = flags[name];
    if (value === true) args.push(kebab(name));
    else if (value !== undefined && value !== false) args.push(kebab(name), String(value));
  }
  return args;
}

/** The scaling part of startNode's options. */
export function scalingNodeOptions(flags: ScalingFlags & Record<string, unknown>): Pick<NodeOptions, 'stagedJoin' | 'capacityBytes' | 'autoscale' | 'scaleReportIntervalMs'> {
  const out: Pick<NodeOptions, 'stagedJoin' | 'capacityBytes' | 'autoscale' | 'scaleReportIntervalMs'> = {};
  if (flags.stagedJoin === true) out.stagedJoin = true;
  if (flags.capacityGib !== undefined) out.capacityBytes = flags.capacityGib * 1024 ** 3;
  if (flags.autoscaleIntervalMs !== undefined) out.scaleReportIntervalMs = flags.autoscaleIntervalMs;
  if (flags.autoscale === undefined) return out;
  const seconds = (s: number | undefined): number | undefined => (s === undefined ? undefined : s * 1000);
  const policy = {
    minNodes: flags.minNodes,
    maxNodes: flags.maxNodes,
    targetOpsPerNode: flags.targetOpsPerNode,
    scaleOutAbove: flags.scaleOutAbove,
    scaleInBelow: flags.scaleInBelow,
    scaleOutWindowMs: seconds(flags.scaleOutWindowSeconds),
    scaleInWindowMs: seconds(flags.scaleInWindowSeconds),
    cooldownMs: seconds(flags.cooldownSeconds),
    evaluateIntervalMs: flags.autoscaleIntervalMs,
    scaleInVictim: flags.scaleInVictim,
  };
  const defined = Object.fromEntries(Object.entries(policy).filter(([, v]) => v !== undefined));
  out.autoscale = { provisioner: flags.autoscale, ...defined, localArgs: inheritedArgs(flags) };
  return out;
}
