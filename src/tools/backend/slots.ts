/**
 * A server's parallel slots: at most `capacity` calls are served at once, the rest wait in FIFO order,
 * so latency grows with load as it does on a real server. A waiting call that is cancelled leaves the
 * queue. `capacity` 0 means unlimited. Transport-free; the gRPC service uses it per call.
 */
export class Slots {
  private busyCount = 0;
  private readonly waiting: Array<{ grant: () => void }> = [];

  constructor(readonly capacity: number) {}

  get busy(): number {
    return this.busyCount;
  }
  get queued(): number {
    return this.waiting.length;
  }
  /** Share of slots in use, 0..1 (0 when unlimited and idle, else busy / (busy + 1) as a soft figure). */
  get busyShare(): number {
    if (this.capacity > 0) return Math.min(1, this.busyCount / this.capacity);
    return this.busyCount / (this.busyCount + 1);
  }

  /**
   * Resolves with a release function once a slot is free. Rejects with the signal's reason if `signal`
   * aborts first (the call then never held a slot).
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.capacity === 0 || this.busyCount < this.capacity) {
      this.busyCount++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.busyCount++;
          resolve(this.releaser());
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.busyCount--;
      this.waiting.shift()?.grant();
    };
  }
}
