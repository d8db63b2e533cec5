import type { SuiteRunner } from '../../../src/testing/index.js';

interface Block {
  name: string;
  beforeAll: Array<() => Promise<void>>;
  afterAll: Array<() => Promise<void>>;
  tests: Array<{ name: string; fn: () => Promise<void> }>;
  children: Block[];
}

/** The outcome of one generated test: its full name and the error it failed with. */
export interface CollectedOutcome {
  name: string;
  error?: Error;
}

/**
 * A SuiteRunner that records what describeTenantIsolation declares, then runs it like vitest
 * would (hooks, tests in order, failures caught), so a test can assert which generated tests
 * fail. A generated suite that cannot fail is what this exists to rule out.
 */
export class CollectingRunner implements SuiteRunner {
  readonly #root: Block = { name: '', beforeAll: [], afterAll: [], tests: [], children: [] };
  #current = this.#root;

  describe(name: string, fn: () => void): void {
    const block: Block = { name, beforeAll: [], afterAll: [], tests: [], children: [] };
    this.#current.children.push(block);
    const parent = this.#current;
    this.#current = block;
    try {
      fn();
    } finally {
      this.#current = parent;
    }
  }

  it(name: string, fn: () => Promise<void>): void {
    this.#current.tests.push({ name, fn });
  }

  beforeAll(fn: () => Promise<void>): void {
    this.#current.beforeAll.push(fn);
  }

  afterAll(fn: () => Promise<void>): void {
    this.#current.afterAll.push(fn);
  }

  /** Every declared test name, `outer > inner > test`. */
  names(): string[] {
    const out: string[] = [];
    const walk = (b: Block, path: string[]) => {
      for (const t of b.tests) out.push([...path, t.name].join(' > '));
      for (const c of b.children) walk(c, [...path, c.name]);
    };
    walk(this.#root, []);
    return out;
  }

  /** Runs everything; a failing beforeAll fails every test below it, as in vitest. */
  async run(): Promise<CollectedOutcome[]> {
    const out: CollectedOutcome[] = [];
    const walk = async (b: Block, path: string[], inherited?: Error) => {
      let setup = inherited;
      if (!setup) {
        try {
          for (const h of b.beforeAll) await h();
        } catch (error) {
          setup = error as Error;
        }
      }
      for (const t of b.tests) {
        const name = [...path, t.name].join(' > ');
        if (setup) out.push({ name, error: setup });
        else {
          try {
            await t.fn();
            out.push({ name });
          } catch (error) {
            out.push({ name, error: error as Error });
          }
        }
      }
      for (const c of b.children) await walk(c, [...path, c.name], setup);
      for (const h of b.afterAll) await h();
    };
    await walk(this.#root, []);
    return out;
  }
}
