import { ESLintUtils } from '@typescript-eslint/utils';

// Where each rule's docs live (its section of docs/lint.md). The repository has no public URL
// in package.json yet: change this base when it does.
const DOCS_BASE = 'https://github.com/tenantry/tenantry/blob/main/docs/lint.md';

/** Builds a rule whose docs URL points at its section of docs/lint.md. */
export const createRule = ESLintUtils.RuleCreator((name) => `${DOCS_BASE}#tenantry${name}`);
