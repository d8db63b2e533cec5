/** What a {@link TenantPoolObserver} learns about one completed statement (no text, no values). */
export interface StatementObservation {
  /** The tenant the statement ran as, or undefined for none. */
  tenantId: string | undefined;
  /** From the client's query() call to its reply, in ms: the database time this statement cost. */
  durationMs: number;
  /** Rows the statement returned or changed, when PostgreSQL says. */
  rowCount: number | null;
  failed: boolean;
}

/**
 * Told about every statement a TenantPool's clients complete (see `TenantPoolConfig.observer`):
 * how usage metering measures database time per tenant. Called synchronously on the reply's
 * path: keep it cheap (add to a counter); a throw is ignored.
 */
export interface TenantPoolObserver {
  statementDone(observation: StatementObservation): void;
}
