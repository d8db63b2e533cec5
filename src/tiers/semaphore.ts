/** A counting semaphore: at most `size` holders at once, the rest wait in arrival order. */
export class Semaphore {
  #inUse = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(readonly size: number) {}

  get inUse(): number {
    return this.#inUse;
  }

  acquire(): Promise<void> {
    if (this.#inUse < this.size) {
      this.#inUse++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next)
      next(); // the slot passes on directly
    else this.#inUse--;
  }
}
