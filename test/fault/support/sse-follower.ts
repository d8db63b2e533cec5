import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A client that follows docs/live-channels.md: reconnects after a stream ends or breaks
 * (waiting the `retry:` the server sent), resumes with `Last-Event-ID`, waits `Retry-After` on a
 * 503, and stops only on an `event: end` frame (a refusal) or close().
 */
export class SseFollower {
  /** Every event's seq received, over every connection. */
  readonly seqs = new Set<number>();
  /** The `data.id` of every event received (recording ids). */
  readonly payloadIds = new Set<string>();
  /** Statuses of every connection attempt (0: no answer). */
  readonly statuses: number[] = [];
  /** The code of an `event: end` frame, if one came. */
  endCode: string | undefined;
  #closed = false;
  #abort: AbortController | undefined;
  #lastId: string | undefined;
  #retryMs = 2000;
  readonly done: Promise<void>;

  constructor(
    readonly url: string,
    readonly token: string,
  ) {
    this.done = this.#run();
  }

  close(): void {
    this.#closed = true;
    this.#abort?.abort();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      this.#abort = new AbortController();
      let res: Response;
      try {
        res = await fetch(`${this.url}/events`, {
          headers: {
            accept: 'text/event-stream',
            authorization: `Bearer ${this.token}`,
            ...(this.#lastId === undefined ? {} : { 'last-event-id': this.#lastId }),
          },
          signal: this.#abort.signal,
        });
      } catch {
        this.statuses.push(0);
        await sleep(1000);
        continue;
      }
      this.statuses.push(res.status);
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        const wait = Number(res.headers.get('retry-after') ?? 2);
        await sleep(Math.min(10, Number.isFinite(wait) && wait > 0 ? wait : 2) * 1000);
        continue;
      }
      await this.#read(res).catch(() => undefined);
      if (this.endCode !== undefined) return;
      await sleep(this.#retryMs);
    }
  }

  async #read(res: Response): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let at: number;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const frame: { id?: string; event?: string; data?: string } = {};
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) frame.id = line.slice(4);
          else if (line.startsWith('event: ')) frame.event = line.slice(7);
          else if (line.startsWith('data: ')) frame.data = line.slice(6);
          else if (line.startsWith('retry: ')) this.#retryMs = Number(line.slice(7)) || this.#retryMs;
        }
        if (frame.event === 'end') {
          this.endCode = (JSON.parse(frame.data ?? '{}') as { code?: string }).code;
          return;
        }
        if (frame.data === undefined) continue;
        if (frame.id !== undefined) this.#lastId = frame.id;
        const data = JSON.parse(frame.data) as { seq?: number; data?: { id?: string } };
        if (typeof data.seq === 'number') this.seqs.add(data.seq);
        if (typeof data.data?.id === 'string') this.payloadIds.add(data.data.id);
      }
    }
  }
}
