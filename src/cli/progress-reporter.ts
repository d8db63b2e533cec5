import cliProgress from 'cli-progress';

/** One state of long work: the phase (a step, and what it works on) and how far it is. */
export interface ProgressUpdate {
  /** What is being done, e.g. `copying notes` or `migrating`: a new phase ends the previous one. */
  phase: string;
  /** Units done in this phase (rows, targets…). */
  done?: number;
  /** Units in the phase, when known: a bar is drawn only then. */
  total?: number;
  /** What the numbers count (`rows`, `targets`). */
  unit?: string;
  /** Anything else worth showing (a backlog, failures so far). */
  detail?: string;
}

/** Shows the progress of long work (move, migrate, and later export and purge). */
export interface ProgressReporter {
  update(state: ProgressUpdate): void;
  /** A line of its own (a failure, a warning), printed above the bar on a terminal. */
  note(line: string): void;
  /** Ends the current phase (its last state is shown) and releases the terminal. */
  stop(): void;
}

/** Options of {@link progressReporter}. */
export interface ProgressReporterOptions {
  /** Where to write (default `process.stderr`: stdout stays for the result, `--json` included). */
  stream?: NodeJS.WriteStream;
  /** Put before every line, e.g. `move 1a2b3c4d`. */
  label?: string;
  /** Draw a bar (default: when `stream` is a terminal). */
  tty?: boolean;
  /** Without a terminal: how often a phase still running is logged (default 5 s). */
  intervalMs?: number;
}

/** `1200/5000 rows (24%)`, `1200 rows`, or nothing. */
export function progressCounts(state: ProgressUpdate): string {
  const unit = state.unit ? ` ${state.unit}` : '';
  if (state.done === undefined) return '';
  if (state.total === undefined) return `${state.done}${unit}`;
  const percent = state.total > 0 ? Math.floor((100 * state.done) / state.total) : 100;
  return `${state.done}/${state.total}${unit} (${percent}%)`;
}

/** The plain line of a state: `label  phase  counts  detail`. */
export function progressLine(label: string | undefined, state: ProgressUpdate): string {
  return [label, state.phase, progressCounts(state), state.detail].filter(Boolean).join('  ');
}

/**
 * A progress reporter: on a terminal a cli-progress bar per phase (redrawn in place, left on
 * screen with its final count when the phase ends); otherwise plain lines for a log — each phase's
 * final state when it ends, and a phase that runs long every `intervalMs` in between. (cli-progress
 * has a non-terminal mode too, but it prints on a timer only: a short phase would leave no line,
 * or one with its starting count, like `0/3 rows` for a table that was copied whole.)
 *
 * @example
 * const progress = progressReporter({ label: 'export acme' });
 * progress.update({ phase: 'copying notes', done: 500, total: 2000, unit: 'rows' });
 * progress.stop();
 */
export function progressReporter(options: ProgressReporterOptions = {}): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? stream.isTTY === true;
  return tty ? barReporter(stream, options.label) : lineReporter(stream, options.label, options.intervalMs ?? 5000);
}

function lineReporter(stream: NodeJS.WriteStream, label: string | undefined, intervalMs: number): ProgressReporter {
  let current: ProgressUpdate | undefined;
  let shown = true;
  let lastAt = 0;
  const print = (state: ProgressUpdate) => {
    stream.write(`${progressLine(label, state)}\n`);
    shown = true;
    lastAt = performance.now();
  };
  return {
    update(state) {
      if (current && current.phase !== state.phase && !shown) print(current);
      if (!current || current.phase !== state.phase) lastAt = performance.now(); // a phase's first state is not news
      current = state;
      shown = false;
      if (performance.now() - lastAt >= intervalMs) print(state);
    },
    note(line) {
      stream.write(`${line}\n`);
    },
    stop() {
      if (current && !shown) print(current);
      current = undefined;
    },
  };
}

function barReporter(stream: NodeJS.WriteStream, label: string | undefined): ProgressReporter {
  let bar: cliProgress.SingleBar | undefined;
  let phase: string | undefined;
  const format: cliProgress.GenericFormatter = (options, params, payload: ProgressUpdate) => {
    const state = { ...payload, done: params.value, total: payload.total === undefined ? undefined : params.total };
    const barText = state.total === undefined ? '' : `[${cliProgress.Format.BarFormat(params.progress, options)}]`;
    return [label, state.phase, barText, progressCounts(state), state.detail].filter(Boolean).join('  ');
  };
  const end = () => {
    bar?.stop();
    bar = undefined;
    phase = undefined;
  };
  return {
    update(state) {
      if (phase !== state.phase) end();
      if (!bar) {
        bar = new cliProgress.SingleBar({
          stream,
          format,
          barsize: 30,
          // the cursor is left as it is, so nothing to restore on Ctrl-C: no SIGINT handler of its
          // own (one would swallow the first Ctrl-C, and a move would go on)
          hideCursor: null,
          gracefulExit: false,
          linewrap: true,
          clearOnComplete: false,
        });
        bar.start(state.total ?? 0, state.done ?? 0, state);
        phase = state.phase;
        return;
      }
      if (state.total !== undefined && state.total !== bar.getTotal()) bar.setTotal(state.total);
      bar.update(state.done ?? 0, state);
    },
    note(line) {
      // above the bar: clear its line, write the note, let the bar redraw below
      stream.write(`\r\x1b[2K${line}\n`);
      bar?.render();
    },
    stop: end,
  };
}
