/**
 * Runs an async task one at a time: `kick` starts it now, or once more after the run in
 * progress (kicks during a run collapse into one more run). The firewall and VIP syncers apply
 * through it, so an apply never overlaps another and a change during an apply is never lost.
 */
export class SerialRunner {
  private running: Promise<void> | undefined;
  private again = false;

  /** `task` runs again after a kick during it while `active()` holds. */
  constructor(
    private readonly task: () => Promise<void>,
    private readonly active: () => boolean,
  ) {}

  kick(): void {
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.task();
      } while (this.again && this.active());
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when no run is in progress. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }
}
