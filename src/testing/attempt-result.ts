/** Who makes an attempt: tenant B (against tenant A's rows), or code with no tenant in context. */
export type Actor = 'tenant-b' | 'no-tenant';

/** An attacker, or tenant A itself in a control request. */
export type AttemptActor = Actor | 'tenant-a';

/** The outcome of one attempt (a few statements) against one table or route. */
export interface AttemptResult {
  /** E.g. `read`, `update`, `GET /recordings/:id`. */
  attempt: string;
  actor: AttemptActor;
  /** How many statements or requests were tried. */
  tries: number;
  /**
   * Every way the attempt got through, in words: the statement or request, and what happened
   * (counts, status codes, SQLSTATEs; never another tenant's data). Empty when it was refused
   * everywhere and nothing else changed.
   */
  leaks: string[];
}

/** Words for an actor, in test names and messages. */
export function actorLabel(actor: AttemptActor): string {
  return actor === 'tenant-b' ? 'tenant B' : actor === 'tenant-a' ? 'tenant A' : 'no tenant';
}

/** A one-paragraph account of a result, for an assertion message. */
export function formatResult(result: AttemptResult): string {
  if (result.leaks.length === 0)
    return `${result.attempt} (${actorLabel(result.actor)}): refused (${result.tries} tries)`;
  return [
    `${result.attempt} (${actorLabel(result.actor)}): ${result.leaks.length} leak(s) in ${result.tries} tries`,
    ...result.leaks.map((l) => `  - ${l}`),
  ].join('\n');
}

/** The stable code of an error: Tenantry's `code` or PostgreSQL's SQLSTATE. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
