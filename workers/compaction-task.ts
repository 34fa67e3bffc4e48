/**
 * Piscina task entry: runs one flush or compaction job against the real file system.
 * Thin on purpose: the logic is lib/storage/background-job.ts, tested on the main thread.
 */

import { type BackgroundJob, type JobResult, runBackgroundJob } from '../lib/storage/background-job.js';
import { NodeFileSystem } from '../lib/storage/node-file-system.js';

import { registerExpiryFilter } from '../lib/shard/expiry-filter.js';

const fs = new NodeFileSystem();
registerExpiryFilter();

export default function compactionTask(job: BackgroundJob): JobResult {
  return runBackgroundJob(fs, job);
}
