import { call } from './reference-server.js';

/**
 * Writers creating recordings in a loop, as clients of an API would: every 201 is an
 * acknowledged write whose id is kept; every other answer's status is counted.
 */
export class Writers {
  readonly acked: string[] = [];
  readonly statuses = new Map<number, number>();
  /** Answers of 503 and whether they carried Retry-After. */
  unavailableWithoutRetryAfter = 0;
  #stopped = false;
  readonly #loops: Promise<void>[] = [];

  constructor(
    url: () => string,
    token: string,
    concurrency = 3,
    readonly label = 'fault',
  ) {
    for (let w = 0; w < concurrency; w++) this.#loops.push(this.#loop(url, token, w));
  }

  /** Acknowledged writes so far. */
  get count(): number {
    return this.acked.length;
  }

  count5xx(status: number): number {
    return this.statuses.get(status) ?? 0;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops);
  }

  async #loop(url: () => string, token: string, w: number): Promise<void> {
    for (let n = 0; !this.#stopped; n++) {
      const res = await call(`${url()}/recordings`, token, 'POST', {
        title: `${this.label} ${w}-${n}`,
        durationSeconds: 1,
        mimeType: 'audio/ogg',
      });
      this.statuses.set(res.status, (this.statuses.get(res.status) ?? 0) + 1);
      if (res.status === 201) this.acked.push((res.body as { id: string }).id);
      else {
        if (res.status === 503 && res.retryAfter === null) this.unavailableWithoutRetryAfter += 1;
        await new Promise((resolve) => setTimeout(resolve, 200)); // a client backs off a little
      }
    }
  }
}
