/**
 * The insertion order of a Map's entries, kept beside it so that the oldest entry is found
 * in O(1) (rid-table.ts). V8's Map keeps deleted slots until it rehashes, so iterating a Map
 * used as a queue from its front skips every entry deleted there since: with 100k entries and
 * every write evicting the oldest, that walk was most of a write's cost.
 *
 * Each (re)insertion of a key pushes (key, stamp) with a fresh stamp; the owner keeps the
 * stamp in its entry, so an item whose entry was re-inserted or deleted since is stale and is
 * dropped when it reaches the front. `compact` bounds the stale items a key re-inserted over
 * and over could pile up. Pure, single-threaded.
 */

export class StampQueue {
  #names: (string | undefined)[] = new Array<string | undefined>(16);
  #stamps: number[] = new Array<number>(16).fill(0);
  #head = 0;
  #length = 0;
  #next = 1;

  get length(): number {
    return this.#length;
  }

  /** Appends `name`; returns its stamp (to keep in the entry). */
  push(name: string): number {
    if (this.#length === this.#names.length) this.#grow();
    const at = (this.#head + this.#length) % this.#names.length;
    const stamp = this.#next++;
    this.#names[at] = name;
    this.#stamps[at] = stamp;
    this.#length++;
    return stamp;
  }

  /** The front item's name (undefined when empty) and stamp. */
  get frontName(): string | undefined {
    return this.#length === 0 ? undefined : this.#names[this.#head];
  }

  get frontStamp(): number {
    return this.#stamps[this.#head]!;
  }

  shift(): void {
    if (this.#length === 0) return;
    this.#names[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#names.length;
    this.#length--;
  }

  /** Keeps only the items `live` accepts, in order. */
  compact(live: (name: string, stamp: number) => boolean): void {
    const names: (string | undefined)[] = [];
    const stamps: number[] = [];
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) % this.#names.length;
      const name = this.#names[at]!;
      const stamp = this.#stamps[at]!;
      if (live(name, stamp)) {
        names.push(name);
        stamps.push(stamp);
      }
    }
    const capacity = Math.max(16, names.length * 2);
    this.#length = names.length;
    this.#head = 0;
    this.#names = names.concat(new Array<string | undefined>(capacity - names.length));
    this.#stamps = stamps.concat(new Array<number>(capacity - stamps.length).fill(0));
  }

  #grow(): void {
    const names = new Array<string | undefined>(this.#names.length * 2);
    const stamps = new Array<number>(this.#names.length * 2).fill(0);
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) % this.#names.length;
      names[i] = this.#names[at];
      stamps[i] = this.#stamps[at]!;
    }
    this.#names = names;
    this.#stamps = stamps;
    this.#head = 0;
  }
}
