/**
 * `command:<program>`: runs the user's program for each scaling action, with the action and
 * the target node count as arguments and in the environment:
 *
 *   <program> scale-out <targetNodes>
 *   <program> scale-in <targetNodes> <victimId> <victimAddress>
 *   <program> scale-in <targetNodes>           (with --scale-in-victim provisioner: the platform
 *                                              picks the node, whose preStop hook decommissions it)
 *   RINGKV_AUTOSCALE_ACTION, RINGKV_AUTOSCALE_TARGET, RINGKV_AUTOSCALE_VICTIM, RINGKV_AUTOSCALE_VICTIM_ADDRESS
 *
 * scale-in runs after the victim has left the cluster (through a committed plan) and exited,
 * so the program only frees its machine or pod. The program is run directly (no shell), with
 * a timeout (provisionerCommandTimeoutMs); a non-zero exit fails the decision, and its output
 * (bounded) goes to the log. deploy/kubernetes/autoscale-kubectl.sh is a working example.
 */

import { spawn } from 'node:child_process';
import { limits } from '../../base/limits.js';
import type { Logger } from '../../base/log.js';
import type { ProvisionedNode, Provisioner } from './provisioner.js';

export interface CommandProvisionerOptions {
  readonly program: string;
  readonly logger: Logger;
  readonly timeoutMs?: number;
}

export class CommandProvisioner implements Provisioner {
  readonly name: string;
  readonly #o: CommandProvisionerOptions;

  constructor(options: CommandProvisionerOptions) {
    this.#o = options;
    this.name = `command:${options.program}`;
  }

  scaleOut(targetNodes: number): Promise<void> {
    return this.#run(['scale-out', String(targetNodes)], { RINGKV_AUTOSCALE_ACTION: 'scale-out', RINGKV_AUTOSCALE_TARGET: String(targetNodes) });
  }

  release(victim: { id: string; address: string } | undefined, targetNodes: number): Promise<void> {
    const named: Record<string, string> = victim === undefined ? {} : { RINGKV_AUTOSCALE_VICTIM: victim.id, RINGKV_AUTOSCALE_VICTIM_ADDRESS: victim.address };
    return this.#run(['scale-in', String(targetNodes), ...(victim ? [victim.id, victim.address] : [])], { RINGKV_AUTOSCALE_ACTION: 'scale-in', RINGKV_AUTOSCALE_TARGET: String(targetNodes), ...named });
  }

  nodes(): readonly ProvisionedNode[] {
    return [];
  }

  async close(): Promise<void> {}

  #run(args: string[], env: Record<string, string>): Promise<void> {
    const { program, logger } = this.#o;
    return new Promise((resolve, reject) => {
      const child = spawn(program, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      // Our own timer, not spawn's `timeout`: that one outlives a program that never started.
      const timer = setTimeout(() => child.kill('SIGTERM'), this.#o.timeoutMs ?? limits.provisionerCommandTimeoutMs);
      let output = '';
      const keep = (chunk: Buffer): void => {
        if (output.length < limits.provisionerOutputBytesMax) output += chunk.toString('utf8').slice(0, limits.provisionerOutputBytesMax - output.length);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`${program}: ${error.message}`));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        logger.info({ program, args, code, signal, output: output.trim() }, 'provisioner command finished');
        if (code === 0) resolve();
        else reject(new Error(`${program} ${args.join(' ')} exited with ${code ?? signal}: ${output.trim().slice(-500)}`));
      });
    });
  }
}
