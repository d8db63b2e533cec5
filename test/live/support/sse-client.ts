import http from 'node:http';

/** One SSE frame as the client parsed it. */
export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
}

/**
 * A minimal EventSource for tests over a real socket: answers status and headers, then collects
 * frames, comments and the raw text. `until` resolves when a predicate holds (no timers).
 */
export class SseClient {
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  body = '';
  readonly frames: SseFrame[] = [];
  comments = 0;
  ended = false;
  readonly #request: http.ClientRequest;
  #buffer = '';
  #waiters: Array<{ test: () => boolean; resolve: () => void }> = [];
  readonly response: Promise<void>;

  constructor(baseUrl: string, options: { token?: string; lastEventId?: string; path?: string } = {}) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
    let answered!: () => void;
    let failed!: (error: Error) => void;
    this.response = new Promise((resolve, reject) => ((answered = resolve), (failed = reject)));
    this.#request = http.get(new URL(options.path ?? '/events', baseUrl), { headers, agent: false }, (res) => {
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => this.#read(chunk));
      res.on('end', () => {
        this.ended = true;
        this.#check();
      });
      res.on('error', () => undefined);
      answered();
    });
    this.#request.on('error', (error) => {
      this.ended = true;
      failed(error);
      this.#check();
    });
  }

  /** Frames whose data parsed as JSON. */
  get events(): Array<{
    id: string;
    event: string;
    data: { seq: number; topic: string; data: Record<string, unknown>; createdAt: string };
  }> {
    return this.frames
      .filter((f) => f.data !== undefined)
      .map((f) => ({ id: f.id!, event: f.event!, data: JSON.parse(f.data!) }));
  }

  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  close(): void {
    this.#request.destroy();
  }

  #read(chunk: string): void {
    this.body += chunk;
    this.#buffer += chunk;
    let at: number;
    while ((at = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, at);
      this.#buffer = this.#buffer.slice(at + 2);
      const frame: SseFrame = {};
      let comment = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comment = true;
        else if (line.startsWith('id: ')) frame.id = line.slice(4);
        else if (line.startsWith('event: ')) frame.event = line.slice(7);
        else if (line.startsWith('data: ')) frame.data = line.slice(6);
      }
      if (comment) this.comments += 1;
      else if (frame.data !== undefined) this.frames.push(frame);
    }
    this.#check();
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
  }
}
