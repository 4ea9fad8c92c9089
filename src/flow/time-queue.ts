/** How far back an entry is walked to keep the queue in time order. */
const MAX_WALK = 64;
/** Taken entries are dropped from the arrays once they are this many and half of them. */
const COMPACT_AFTER = 1024;

/**
 * Connection ids in order of a time (when each closed, when it was last heard from), so a sweep takes
 * the due ones from the front instead of scanning every connection. An entry is an (id, serial) pair:
 * one whose id was released (and perhaps reused) since is recognised by its serial and skipped.
 */
export class TimeQueue {
  private ids: number[] = [];
  private serials: number[] = [];
  private times: number[] = [];
  private head = 0;

  /** Entries not yet taken, released ones included until a take or compact passes them. */
  get length(): number {
    return this.times.length - this.head;
  }

  /**
   * Adds an entry. Capture time can step back (merged inputs, clock jumps): the entry is walked back to
   * its place in time order, but only so far. Time running backwards throughout would make the walk
   * quadratic; an entry placed early of its turn is only taken late, when the entries before it are due.
   */
  push(id: number, serial: number, time: number): void {
    const times = this.times;
    let at = times.length;
    const stop = Math.max(this.head, times.length - MAX_WALK);
    while (at > stop && times[at - 1]! > time) at--;
    if (at === times.length) {
      times.push(time);
      this.ids.push(id);
      this.serials.push(serial);
    } else {
      times.splice(at, 0, time);
      this.ids.splice(at, 0, id);
      this.serials.splice(at, 0, serial);
    }
  }

  /** Takes the entries from the front whose time is before `cutoff`, in queue order. */
  takeDue(cutoff: number, take: (id: number, serial: number, time: number) => void): void {
    while (this.head < this.times.length && this.times[this.head]! < cutoff) {
      const at = this.head++;
      take(this.ids[at]!, this.serials[at]!, this.times[at]!);
    }
    if (this.head > COMPACT_AFTER && this.head * 2 > this.times.length) {
      // In place: new arrays here were a few MB of garbage per GiB.
      const left = this.times.length - this.head;
      for (const column of [this.ids, this.serials, this.times]) {
        column.copyWithin(0, this.head);
        column.length = left;
      }
      this.head = 0;
    }
  }

  /** Keeps only the entries `keep` says are still wanted (the rest were released otherwise). */
  compact(keep: (id: number, serial: number) => boolean): void {
    let kept = 0;
    for (let i = this.head; i < this.times.length; i++) {
      if (!keep(this.ids[i]!, this.serials[i]!)) continue;
      this.ids[kept] = this.ids[i]!;
      this.serials[kept] = this.serials[i]!;
      this.times[kept] = this.times[i]!;
      kept++;
    }
    for (const column of [this.ids, this.serials, this.times]) column.length = kept;
    this.head = 0;
  }
}
