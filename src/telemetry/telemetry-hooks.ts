/**
 * Where Tenantry's own code reports what it does (requests, jobs, moves, pool statements, rate
 * limits) to whatever observes it: `tenantry/otel` (spans) and `tenantry/metrics` (Prometheus)
 * install a sink here. The core imports neither OpenTelemetry nor prom-client: with no sink
 * installed every report is one check of a module variable (the "zero cost when absent" of
 * issue 12), measured by `npm run bench:telemetry`.
 */

/** Attribute values of a span: never a secret, PII or another tenant's data. */
export type TelemetryAttributes = Record<string, string | number | boolean | undefined>;

/** What a statement's observer is told when the statement is handed to its connection. */
export interface StatementStart {
  /** The tenant the statement runs as, or `undefined` for none. */
  readonly tenantId: string | undefined;
  /** The statement's text as the application wrote it (never the context prefix, never the values). */
  readonly text: string | undefined;
  /** `<cluster>/<database>` of a RoutedTenantPool's connection, else `undefined`. */
  readonly location: string | undefined;
  /** What the sink's `capture` returned where the application issued the statement (its parent span). */
  readonly parent: unknown;
}

/** Called once when a statement ends: its error, or the rows it returned or changed. */
export type StatementEnd = (error: unknown, rowCount: number | undefined) => void;

/** One observer of Tenantry's work; every member optional. Installed with {@link installTelemetry}. */
export interface TelemetrySink {
  /**
   * Captures, where the application issues a statement, what `statement` needs later (OpenTelemetry's
   * active context): a pool runs the statement after a connection hand-over, in another async context.
   */
  capture?(): unknown;
  /** A statement starts on a connection: returns what to call when it ends, or nothing. */
  statement?(start: StatementStart): StatementEnd | undefined;
  /** A request was resolved to its tenant (in the request's own async context). */
  requestTenant?(tenantId: string): void;
  /** A request ended: its tenant (`undefined` when none was resolved), status and duration. */
  requestEnded?(tenantId: string | undefined, status: number, seconds: number): void;
  /** A request of `tenantId` was refused by a rate limit. */
  rateLimited?(tenantId: string): void;
  /** Runs `fn` inside a span; `annotate` adds attributes learned on the way (the tenant of a move). */
  span?<T>(name: string, attributes: TelemetryAttributes, fn: (annotate: Annotate) => Promise<T>): Promise<T>;
}

/** Adds attributes to the current unit of work's span. */
export type Annotate = (attributes: TelemetryAttributes) => void;

const sinks: TelemetrySink[] = [];
/** The installed sinks' union, or undefined when none: the one check on every hot path. */
let active: Required<TelemetrySink> | undefined;

const noAnnotate: Annotate = () => undefined;

/**
 * Installs a sink (what `tenantry/otel`'s `installTenantTracing` and `tenantry/metrics`'
 * `TenantMetrics.install` call); returns the function that removes it.
 */
export function installTelemetry(sink: TelemetrySink): () => void {
  sinks.push(sink);
  active = combine(sinks);
  return () => {
    const at = sinks.indexOf(sink);
    if (at >= 0) sinks.splice(at, 1);
    active = sinks.length === 0 ? undefined : combine(sinks);
  };
}

/** The installed sinks as one, or `undefined` when none is installed. */
export function activeTelemetry(): Required<TelemetrySink> | undefined {
  return active;
}

/**
 * Counts a request of `tenant` refused by a rate limit in the per-tenant metrics (and whatever
 * else observes Tenantry). Nothing happens when no sink is installed.
 *
 * @example
 * if (!allowed) { recordRateLimited(tenantId); throw new RateLimitedError(...); }
 */
export function recordRateLimited(tenant: string): void {
  active?.rateLimited(tenant);
}

/** Runs `fn` in a span of the installed sinks (just `fn` when none is installed). */
export function telemetrySpan<T>(
  name: string,
  attributes: TelemetryAttributes,
  fn: (annotate: Annotate) => Promise<T>,
): Promise<T> {
  const sink = active;
  return sink === undefined ? fn(noAnnotate) : sink.span(name, attributes, fn);
}

function combine(list: readonly TelemetrySink[]): Required<TelemetrySink> {
  const all = [...list];
  const statementSinks = all.filter((s) => s.statement);
  const capturing = all.find((s) => s.capture);
  const spanning = all.filter((s) => s.span);
  return {
    capture: capturing ? () => capturing.capture!() : () => undefined,
    statement:
      statementSinks.length === 1
        ? (start) => statementSinks[0]!.statement!(start)
        : (start) => {
            const ends = statementSinks.map((s) => s.statement!(start)).filter((e) => e !== undefined);
            if (ends.length === 0) return undefined;
            return (error, rows) => {
              for (const end of ends) end(error, rows);
            };
          },
    requestTenant: (tenantId) => {
      for (const s of all) s.requestTenant?.(tenantId);
    },
    requestEnded: (tenantId, status, seconds) => {
      for (const s of all) s.requestEnded?.(tenantId, status, seconds);
    },
    rateLimited: (tenantId) => {
      for (const s of all) s.rateLimited?.(tenantId);
    },
    // each spanning sink wraps the next: one span per sink, the innermost runs fn
    span: <T>(name: string, attributes: TelemetryAttributes, fn: (annotate: Annotate) => Promise<T>): Promise<T> => {
      const run = (i: number, annotates: Annotate[]): Promise<T> => {
        if (i === spanning.length)
          return fn((attrs) => {
            for (const a of annotates) a(attrs);
          });
        return spanning[i]!.span!(name, attributes, (annotate) => run(i + 1, [...annotates, annotate]));
      };
      return run(0, []);
    },
  };
}
