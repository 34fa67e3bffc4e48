/**
 * The piscina pool that runs flush and compaction jobs off the shard threads (the one seam
 * for piscina). Jobs are plain data; the worker (workers/compaction-task.ts) opens the real
 * file system by path, so this runner is for `NodeFileSystem` engines only. One pool is
 * shared by every shard of a process: merges are CPU-bound and a pool sized to the machine
 * keeps them from starving foreground work.
 *
 * Cost: each job pays a structured clone of its small description and a thread hop; a flush
 * re-reads its commit logs (from the page cache) instead of receiving the memtable.
 */

import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { BackgroundJob, JobResult } from './background-job.js';

export interface CompactionPoolOptions {
  /** Worker threads; default half the machine's parallelism, at least 1. */
  threads?: number;
}

export class CompactionPool {
  readonly #pool: Piscina;

  constructor(options: CompactionPoolOptions = {}) {
    const threads = options.threads ?? Math.max(1, Math.floor(availableParallelism() / 2));
    this.#pool = new Piscina({
      filename: new URL('../../workers/compaction-task.js', import.meta.url).href,
      minThreads: 1,
      maxThreads: threads,
      idleTimeout: 30_000,
    });
  }

  run(job: BackgroundJob): Promise<JobResult> {
    return this.#pool.run(job);
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
