/**
 * The long work a node reports in its status, as progress items: a join, leave or removal's
 * partition transfers, a repair's exchanges, a cleanup's partitions, hint delivery per target
 * and automatic cleanup. One definition for the CLI's bars (`status --watch`, progress.ts)
 * and the dashboard's transfer bars (lib/http/dashboard-view.ts). Pure; owner: the caller.
 */

import type { StatusJson } from '../server/index.js';
import type { ProgressItem } from './progress.js';

/** The parts of a status that describe work (a dashboard LocalSample has the same). */
export interface WorkFigures {
  transfers: StatusJson['transfers'];
  repair: StatusJson['antiEntropy']['repair'];
  cleanupRun?: StatusJson['antiEntropy']['cleanup'];
  hints: StatusJson['hints'];
  cleanupPending: number;
}

export function workFiguresOf(status: StatusJson): WorkFigures {
  return {
    transfers: status.transfers,
    repair: status.antiEntropy.repair,
    cleanupRun: status.antiEntropy.cleanup,
    hints: status.hints,
    cleanupPending: status.cleanup?.pending ?? 0,
  };
}

export function workItems(w: WorkFigures): ProgressItem[] {
  const items: ProgressItem[] = [];
  const t = w.transfers;
  if (t !== undefined && t.phase !== 'idle' && t.phase !== 'left') items.push({ key: 'transfers', what: `${t.phase} (${t.keys} keys)`, done: t.done, total: t.total, unit: 'partitions' });
  if (w.repair.running) items.push({ key: 'repair', what: `repair (${w.repair.keysRepaired} keys)`, done: w.repair.done, total: w.repair.total, unit: 'exchanges' });
  if (w.cleanupRun?.running) items.push({ key: 'cleanup', what: 'cleanup', done: w.cleanupRun.done, total: w.cleanupRun.total, unit: 'partitions' });
  for (const h of w.hints) if (h.hints > 0) items.push({ key: `hints:${h.target}`, what: `hints for ${h.target}`, done: 0, total: h.hints, unit: 'hints' });
  if (w.cleanupPending > 0) items.push({ key: 'auto-cleanup', what: 'auto-cleanup', done: 0, total: w.cleanupPending, unit: 'partitions' });
  return items;
}
