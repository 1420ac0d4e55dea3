/**
 * The pause of a retry loop that new work or a stop can cut short: the loaders of
 * the continuous processor wait `ms` after a failure, unless woken first.
 */
export class RetryPause {
  private wakeUp: (() => void) | null = null;

  /** Resolves after `ms`, or at the next `wake()`. */
  async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = null;
  }

  /** Ends the pause in progress, if any. */
  wake(): void {
    this.wakeUp?.();
  }
}
