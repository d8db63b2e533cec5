import { ESLintUtils } from '@typescript-eslint/utils';

/** Builds a rule whose docs URL points at its section of docs/lint.md. */
export const createRule = ESLintUtils.RuleCreator(
  (name) => `https://github.com/tenantry/tenantry/blob/main/docs/lint.md#tenantry${name}`,
);
