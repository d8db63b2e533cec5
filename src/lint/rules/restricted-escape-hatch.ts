import { AST_NODE_TYPES } from '@typescript-eslint/utils';
import { calleeName } from '../callee-name.js';
import { createRule } from '../create-rule.js';
import { matchesAnyGlob } from '../file-glob.js';

/** Functions that lift or leave tenant isolation; only reviewed modules should call them. */
export const DEFAULT_ESCAPE_HATCHES = ['runAsSystem', 'runWithoutTenant', 'withStaffAccess', 'asStaff'];

/** The rule's options (one object, every property optional). */
export type Options = [{ names?: string[]; allow?: string[] }];
/** Ids of the rule's messages. */
export type MessageIds = 'escapeHatch';

/**
 * `tenantry/restricted-escape-hatch`: calls of escape hatches (`runAsSystem`,
 * `runWithoutTenant`, staff access…) outside the modules listed in `allow` (globs).
 */
export const restrictedEscapeHatch = createRule<Options, MessageIds>({
  name: 'restricted-escape-hatch',
  meta: {
    type: 'problem',
    docs: { description: 'Restrict tenant escape hatches (system, no-tenant and staff access) to allowed modules' },
    schema: [
      {
        type: 'object',
        properties: {
          names: { type: 'array', items: { type: 'string' } },
          allow: { type: 'array', items: { type: 'string' } },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      escapeHatch:
        "{{name}}() leaves the current tenant's isolation: call it only from reviewed modules listed in the rule's `allow` option.",
    },
  },
  defaultOptions: [{ names: DEFAULT_ESCAPE_HATCHES, allow: [] }],
  create(context, [options]) {
    if (matchesAnyGlob(context.filename, options.allow ?? [], context.cwd)) return {};
    const names = new Set(options.names ?? DEFAULT_ESCAPE_HATCHES);
    // `import { runWithoutTenant as leave }`: the local alias is an escape hatch too
    const aliases = new Map<string, string>();
    return {
      ImportSpecifier(node) {
        const imported = node.imported.type === AST_NODE_TYPES.Identifier ? node.imported.name : node.imported.value;
        if (names.has(imported) && node.local.name !== imported) aliases.set(node.local.name, imported);
      },
      CallExpression(node) {
        const called = calleeName(node.callee);
        if (called === undefined) return;
        const name = node.callee.type === AST_NODE_TYPES.Identifier ? (aliases.get(called) ?? called) : called;
        if (names.has(name)) context.report({ node, messageId: 'escapeHatch', data: { name } });
      },
    };
  },
});
