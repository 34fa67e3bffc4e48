/**
 * Provisioners (lib/supervisor/scaling): `command:<program>` runs the user's program with the
 * action and target count (arguments and environment), fails the action on a non-zero exit,
 * and the spec parser refuses unknown provisioners. The local provisioner is exercised end to
 * end by cluster-autoscale.test.ts.
 */

import t from 'tap';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/base/log.js';
import { createProvisioner, validateProvisionerSpec } from '../lib/supervisor/scaling/provisioner.js';
import { CommandProvisioner } from '../lib/supervisor/scaling/command-provisioner.js';
import { policyConfigOf } from '../lib/supervisor/scaling/scaling.js';
import { inheritedArgs, scalingNodeOptions } from '../lib/cli/scaling-flags.js';

const logger = silentLogger;

t.test('command:<program> gets the action, the target and the victim', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-provisioner-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'calls.log');
  const script = join(dir, 'scale.sh');
  writeFileSync(script, `#!/bin/sh\necho "$@ | $RINGKV_AUTOSCALE_ACTION $RINGKV_AUTOSCALE_TARGET $RINGKV_AUTOSCALE_VICTIM" >> ${log}\n[ "$2" = "9" ] && { echo "no capacity" >&2; exit 3; }\nexit 0\n`);
  chmodSync(script, 0o755);
  const provisioner = createProvisioner(`command:${script}`, { logger, address: '127.0.0.1:1' });
  t.equal(provisioner.name, `command:${script}`);
  await provisioner.scaleOut(4);
  await provisioner.release({ id: 'n-7', address: '10.0.0.7:7070' }, 3);
  t.same(readFileSync(log, 'utf8').trim().split('\n').map((l) => l.trimEnd()), ['scale-out 4 | scale-out 4', 'scale-in 3 n-7 10.0.0.7:7070 | scale-in 3 n-7']);
  await t.rejects(provisioner.scaleOut(9), /exited with 3: no capacity/);
  t.same(provisioner.nodes(), []);
  await provisioner.close();
  const missing = createProvisioner(`command:${join(dir, 'absent')}`, { logger, address: '127.0.0.1:1' });
  await t.rejects(missing.scaleOut(4), /ENOENT/);
  const slow = join(dir, 'slow.sh');
  writeFileSync(slow, '#!/bin/sh\nexec sleep 30\n');
  chmodSync(slow, 0o755);
  const stuck = new CommandProvisioner({ program: slow, logger, timeoutMs: 200 });
  await t.rejects(stuck.scaleOut(4), /exited with SIGTERM/, 'a program past its timeout is stopped and fails the action');
});

t.test('provisioner specs and autoscale options are checked', async (t) => {
  t.equal(validateProvisionerSpec('local'), 'local');
  t.equal(validateProvisionerSpec('command:/bin/true'), 'command:/bin/true');
  for (const bad of ['cloud', 'command:', 3]) t.throws(() => validateProvisionerSpec(bad), /autoscale must be 'local' or 'command:<program>'/);
  t.throws(() => createProvisioner('kubernetes', { logger, address: 'x:1' }), /autoscale must be/);
  t.throws(() => createProvisioner('local', { logger, address: 'x:1' }), /local start template/);
  t.equal(policyConfigOf({ minNodes: 2, maxNodes: undefined }).maxNodes, 8, 'undefined keeps the default');
  t.throws(() => policyConfigOf({ minNodes: 9 }), /maxNodes must be at least minNodes/);
});

t.test('start flags become node options; local nodes inherit the cluster and autoscale flags', async (t) => {
  const flags = { autoscale: 'local', minNodes: 3, maxNodes: 5, targetOpsPerNode: 25, scaleOutWindowSeconds: 4, cooldownSeconds: 2, autoscaleIntervalMs: 500, capacityGib: 1, shards: 1, partitionBits: 6, stagedJoin: false, port: 7070, dir: './d' };
  const options = scalingNodeOptions(flags);
  t.same(options.autoscale, {
    provisioner: 'local',
    minNodes: 3,
    maxNodes: 5,
    targetOpsPerNode: 25,
    scaleOutWindowMs: 4000,
    cooldownMs: 2000,
    evaluateIntervalMs: 500,
    localArgs: ['--autoscale', 'local', '--min-nodes', '3', '--max-nodes', '5', '--target-ops-per-node', '25', '--scale-out-window-seconds', '4', '--cooldown-seconds', '2', '--capacity-gib', '1', '--autoscale-interval-ms', '500', '--shards', '1', '--partition-bits', '6'],
  });
  t.equal(options.capacityBytes, 1024 ** 3);
  t.equal(options.scaleReportIntervalMs, 500);
  t.same(scalingNodeOptions({ stagedJoin: true }), { stagedJoin: true });
  t.same(inheritedArgs({ port: 1, dir: 'x', seeds: ['a:1'] }), [], 'addresses and directories are never inherited');
});
