/**
 * Runs flush and compaction jobs on the calling thread, one event-loop turn later. Used with
 * the in-memory file system (which a pool worker cannot see) and wherever a second thread is
 * not worth it. The piscina-backed runner is compaction-pool.ts.
 */

import { type BackgroundJob, type JobResult, runBackgroundJob } from './background-job.js';
import type { FileSystem } from './file-system.js';

export class InlineRunner {
  readonly #fs: FileSystem;

  constructor(fs: FileSystem) {
    this.#fs = fs;
  }

  run(job: BackgroundJob): Promise<JobResult> {
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(runBackgroundJob(this.#fs, job));
        } catch (error) {
          reject(error as Error);
        }
      });
    });
  }
}
