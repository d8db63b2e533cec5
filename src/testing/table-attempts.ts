import type { Actor } from './attempt-result.js';

/** The attacks generated for every tenant table. */
export type TableAttemptKind = 'read' | 'list' | 'update' | 'delete' | 'insert' | 'move' | 'guess';

/** One generated attack: what it tries, who tries it. */
export interface TableAttempt {
  kind: TableAttemptKind;
  actor: Actor;
  /** Test name. */
  title: string;
}

// Order matters when a table leaks: the attacks that destroy tenant A's rows come last, so the
// earlier ones still have targets and every leak is reported.
const KINDS: ReadonlyArray<{ kind: TableAttemptKind; title: string; noTenant: boolean }> = [
  { kind: 'read', title: "reads none of A's rows by id, nor by id and A's tenant id", noTenant: true },
  { kind: 'list', title: "lists and counts none of A's rows", noTenant: true },
  { kind: 'insert', title: "cannot insert a row carrying A's tenant id (42501)", noTenant: true },
  { kind: 'move', title: 'cannot move its own row into A (42501)', noTenant: false },
  {
    kind: 'update',
    title: "updates none of A's rows (by id, by id and A's tenant id, nor moving them out)",
    noTenant: true,
  },
  { kind: 'delete', title: "deletes none of A's rows", noTenant: true },
  {
    kind: 'guess',
    title: "reaches nothing by guessed ids (A's ids and the neighbours of A's and B's ids)",
    noTenant: true,
  },
];

/** Every attempt, tenant B's first, then the ones with no tenant in context. */
export const TABLE_ATTEMPTS: readonly TableAttempt[] = Object.freeze([
  ...KINDS.map(({ kind, title }) => ({ kind, actor: 'tenant-b' as const, title })),
  ...KINDS.filter((k) => k.noTenant).map(({ kind, title }) => ({ kind, actor: 'no-tenant' as const, title })),
]);
