/**
 * Which compaction to run next: pure, given the levels, returns a plan or nothing.
 *
 * Leveled compaction as in LevelDB (doc/impl.md): level 0 holds flushed tables that may
 * overlap; each level L >= 1 is one sorted run of non-overlapping tables whose total size is
 * bounded by level1BytesMax * multiplier^(L-1). Scores: L0 = table count / trigger; L>=1 =
 * bytes / bound. The highest score >= 1 is compacted: all of L0 (plus the L1 tables they
 * overlap) into L1, or one table of L (chosen round-robin after the level's compact pointer)
 * plus its overlap in L+1. A table with no overlap below is moved, not rewritten.
 *
 * Why leveled and not size-tiered: the issue bounds space amplification at 2x live data and
 * our reads are point gets. Leveled keeps ~1.1x space and at most one table per level to
 * probe (plus L0); size-tiered trades that for lower write amplification, which group commit
 * and 100-byte values make less important. perf/storage.ts reports write amplification.
 *
 * Tombstones may be dropped from the output only when no level below the output holds a key
 * in its range (isBottommost), so no older version can resurface.
 */

import { compareBytes } from './internal-key.js';
import type { TableMeta } from './manifest.js';

export interface CompactionConfig {
  level0CompactionTrigger: number;
  level1BytesMax: number;
  levelSizeMultiplier: number;
  levelCount: number;
}

export interface CompactionPlan {
  /** Source groups, newest first; each group is a key-ordered list of non-overlapping tables. */
  sources: TableMeta[][];
  inputs: TableMeta[];
  outputLevel: number;
  /** True when the plan only moves one table down a level. */
  trivialMove: boolean;
  dropTombstones: boolean;
}

export function levelBytesMax(level: number, config: CompactionConfig): number {
  return config.level1BytesMax * config.levelSizeMultiplier ** Math.max(0, level - 1);
}

export function levelScores(levels: readonly TableMeta[][], config: CompactionConfig): number[] {
  return levels.map((tables, level) => {
    if (level === config.levelCount - 1) return 0;
    if (level === 0) return tables.length / config.level0CompactionTrigger;
    const bytes = tables.reduce((sum, t) => sum + t.fileBytes, 0);
    return bytes / levelBytesMax(level, config);
  });
}

function overlaps(t: TableMeta, smallest: Uint8Array, largest: Uint8Array): boolean {
  return compareBytes(t.largest, smallest) >= 0 && compareBytes(t.smallest, largest) <= 0;
}

export function rangeOf(tables: readonly TableMeta[]): { smallest: Uint8Array; largest: Uint8Array } {
  let smallest = tables[0]!.smallest;
  let largest = tables[0]!.largest;
  for (const t of tables) {
    if (compareBytes(t.smallest, smallest) < 0) smallest = t.smallest;
    if (compareBytes(t.largest, largest) > 0) largest = t.largest;
  }
  return { smallest, largest };
}

export function overlappingTables(tables: readonly TableMeta[], smallest: Uint8Array, largest: Uint8Array): TableMeta[] {
  return tables.filter((t) => overlaps(t, smallest, largest));
}

/** True when no level deeper than `outputLevel` holds a key in [smallest, largest]. */
export function isBottommost(levels: readonly TableMeta[][], outputLevel: number, smallest: Uint8Array, largest: Uint8Array): boolean {
  for (let level = outputLevel + 1; level < levels.length; level++) {
    if (levels[level]!.some((t) => overlaps(t, smallest, largest))) return false;
  }
  return true;
}

/** The next compaction, or undefined when every level is within its bound. */
export function pickCompaction(
  levels: readonly TableMeta[][],
  compactPointers: readonly (Uint8Array | undefined)[],
  config: CompactionConfig,
): CompactionPlan | undefined {
  const scores = levelScores(levels, config);
  let level = -1;
  for (let i = 0; i < scores.length; i++) if (scores[i]! >= 1 && (level < 0 || scores[i]! > scores[level]!)) level = i;
  if (level < 0) return undefined;
  const upper = level === 0 ? [...levels[0]!] : [pickRoundRobin(levels[level]!, compactPointers[level])];
  return planFrom(levels, level, upper);
}

function pickRoundRobin(tables: readonly TableMeta[], pointer: Uint8Array | undefined): TableMeta {
  if (pointer !== undefined) {
    const after = tables.find((t) => compareBytes(t.largest, pointer) > 0);
    if (after) return after;
  }
  return tables[0]!;
}

function planFrom(levels: readonly TableMeta[][], level: number, upper: TableMeta[]): CompactionPlan {
  const outputLevel = level + 1;
  const { smallest, largest } = rangeOf(upper);
  const lower = overlappingTables(levels[outputLevel]!, smallest, largest);
  const inputs = [...upper, ...lower];
  const range = rangeOf(inputs);
  const sources: TableMeta[][] =
    level === 0 ? [...upper].sort((a, b) => b.fileNumber - a.fileNumber).map((t) => [t]) : [upper];
  if (lower.length > 0) sources.push(lower);
  return {
    sources,
    inputs,
    outputLevel,
    trivialMove: level > 0 && lower.length === 0 && upper.length === 1,
    dropTombstones: isBottommost(levels, outputLevel, range.smallest, range.largest),
  };
}

/** A major compaction: every table merged into one sorted run at the deepest used level. */
export function planFullCompaction(levels: readonly TableMeta[][]): CompactionPlan | undefined {
  const all = levels.flat();
  if (all.length === 0) return undefined;
  let deepest = 1;
  for (let level = levels.length - 1; level >= 1; level--) {
    if (levels[level]!.length > 0) {
      deepest = level;
      break;
    }
  }
  const sources: TableMeta[][] = [...levels[0]!].sort((a, b) => b.fileNumber - a.fileNumber).map((t) => [t]);
  for (let level = 1; level < levels.length; level++) if (levels[level]!.length > 0) sources.push([...levels[level]!]);
  return { sources, inputs: all, outputLevel: deepest, trivialMove: false, dropTombstones: true };
}
