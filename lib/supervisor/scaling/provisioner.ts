/**
 * Provisioners: what gives the autoscaler a node and takes one back, behind one small
 * interface (DESIGN.md §6). `local` starts and stops `ringkv start` processes on this machine
 * (local-provisioner.ts); `command:<program>` runs a program of the user's with the action and
 * the target count (command-provisioner.ts), e.g. a script running `kubectl scale statefulset
 * ringkv --replicas=N` or a cloud CLI. Owned by the supervisor (main thread).
 *
 * Contract: `scaleOut(target)` returns once a node was asked for (not once it joined: the
 * autoscaler watches gossip for that). `release(victim, target)` runs after the victim has
 * left the cluster through a committed plan and exited; it frees whatever ran it.
 */

import type { Logger } from '../../base/log.js';
import { CommandProvisioner } from './command-provisioner.js';
import { LocalProvisioner, type LocalProvisionerOptions } from './local-provisioner.js';

export interface ProvisionedNode {
  readonly id?: string;
  readonly pid?: number;
  readonly dir?: string;
}

export interface Provisioner {
  readonly name: string;
  scaleOut(targetNodes: number): Promise<void>;
  /** Frees the victim once it left; with no victim (scaleInVictim 'provisioner') the platform picks one and it decommissions itself. */
  release(victim: { id: string; address: string } | undefined, targetNodes: number): Promise<void>;
  /** Nodes this provisioner runs (for status). */
  nodes(): readonly ProvisionedNode[];
  close(): Promise<void>;
}

export interface ProvisionerContext {
  readonly logger: Logger;
  /** This node's address (new local nodes seed from it). */
  readonly address: string;
  readonly local?: Omit<LocalProvisionerOptions, 'logger' | 'seed'>;
}

/** The provisioner a `--autoscale` value names: `local` or `command:<program>`. */
export function createProvisioner(spec: string, context: ProvisionerContext): Provisioner {
  if (spec === 'local') {
    if (context.local === undefined) throw new RangeError('autoscale local needs the local start template (dir and args)');
    return new LocalProvisioner({ ...context.local, logger: context.logger, seed: context.address });
  }
  if (spec.startsWith('command:') && spec.length > 'command:'.length) return new CommandProvisioner({ program: spec.slice('command:'.length), logger: context.logger });
  throw new RangeError(`autoscale must be 'local' or 'command:<program>', got ${JSON.stringify(spec)}`);
}

/** Checks a `--autoscale` value without building anything. */
export function validateProvisionerSpec(spec: unknown): string {
  if (typeof spec !== 'string' || !(spec === 'local' || (spec.startsWith('command:') && spec.length > 'command:'.length))) {
    throw new RangeError(`autoscale must be 'local' or 'command:<program>', got ${JSON.stringify(spec)}`);
  }
  return spec;
}
