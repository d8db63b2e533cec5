import type { ClaimedJob } from './job-queue-adapter.js';

/** What one worker loop does: claim a job, run it; wait when there is none. */
export interface WorkerLoopOptions {
  claim(): Promise<ClaimedJob | undefined>;
  run(job: ClaimedJob): Promise<void>;
  pollIntervalMs: number;
  onError(error: unknown): void;
}

/**
 * One worker: claims the next job as soon as the previous one ended (pg-boss's own worker waits a
 * polling interval between fetches even when jobs are waiting), waits `pollIntervalMs` when the
 * queue is empty or unreachable. `stop()` lets the current job finish, bounded.
 */
export class WorkerLoop {
  #stopping = false;
  #wake: (() => void) | undefined;
  #done: Promise<void> | undefined;

  constructor(private readonly options: WorkerLoopOptions) {}

  start(): void {
    this.#done ??= this.#loop();
  }

  /** Ends an idle wait now: a job was just enqueued in this process. */
  wake(): void {
    this.#wake?.();
  }

  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#done,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let found = false;
      try {
        const job = await this.options.claim();
        if (job) {
          found = true;
          await this.options.run(job);
        }
      } catch (error) {
        this.options.onError(error);
      }
      if (!found && !this.#stopping) await this.#sleep();
    }
  }

  #sleep(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.options.pollIntervalMs);
      this.#wake = done;
    });
  }
}
