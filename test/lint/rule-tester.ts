import { RuleTester, type RunTests } from '@typescript-eslint/rule-tester';
import type { RuleModule } from '@typescript-eslint/utils/ts-eslint';
import { afterAll, describe, it } from 'vitest';

// RuleTester drives its cases through these hooks; Vitest provides them.
RuleTester.afterAll = afterAll;
RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const tester = new RuleTester(); // the TypeScript parser, without type information

/**
 * Runs RuleTester on `rule`. The cast bridges two installed copies of @typescript-eslint's
 * scope-manager types (rule-tester pins its own utils); the rule objects are the same at run time.
 */
export function runRule<M extends string, O extends readonly unknown[]>(
  name: string,
  rule: RuleModule<M, O>,
  tests: RunTests<M, O>,
): void {
  tester.run(name, rule as unknown as Parameters<typeof tester.run<M, O>>[1], tests);
}
