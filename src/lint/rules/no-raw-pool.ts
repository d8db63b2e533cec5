import { ASTUtils, AST_NODE_TYPES, type TSESLint, type TSESTree } from '@typescript-eslint/utils';
import { propertyName } from '../callee-name.js';
import { createRule } from '../create-rule.js';
import { matchesAnyGlob } from '../file-glob.js';

/** How a PostgreSQL driver opens connections, as far as a syntactic rule can see it. */
interface Driver {
  /** Named exports that open a pool or a connection (`new Pool()`, `neon()`…). */
  readonly exports: readonly string[];
  /** Whether the default export is itself the opener (`postgres(url)`, `new Pool()` of pg-pool). */
  readonly defaultOpens: boolean;
}

// The drivers an application could reach PostgreSQL with, bypassing the TenantPool.
const DRIVERS: Readonly<Record<string, Driver>> = {
  pg: { exports: ['Pool', 'Client', 'native'], defaultOpens: false },
  'pg-pool': { exports: [], defaultOpens: true },
  'pg-native': { exports: [], defaultOpens: true },
  postgres: { exports: [], defaultOpens: true },
  'pg-promise': { exports: [], defaultOpens: true },
  '@neondatabase/serverless': { exports: ['Pool', 'Client', 'neon'], defaultOpens: false },
  '@vercel/postgres': { exports: ['createPool', 'createClient'], defaultOpens: false },
};

type Binding = { module: string; kind: 'default' } | { module: string; kind: 'named'; name: string };

/** The rule's options (one object, every property optional). */
export type Options = [{ allow?: string[] }];
/** Ids of the rule's messages. */
export type MessageIds = 'rawPool' | 'useTenantPool';

/**
 * `tenantry/no-raw-pool`: a pool or client opened straight from a PostgreSQL driver does not
 * apply the tenant context; only modules listed in `allow` (globs) may open one.
 */
export const noRawPool = createRule<Options, MessageIds>({
  name: 'no-raw-pool',
  meta: {
    type: 'problem',
    hasSuggestions: true,
    docs: {
      description: 'Disallow opening PostgreSQL pools or clients straight from a driver outside allowed modules',
    },
    schema: [
      {
        type: 'object',
        properties: { allow: { type: 'array', items: { type: 'string' } } },
        additionalProperties: false,
      },
    ],
    messages: {
      rawPool:
        '{{what}} from "{{module}}" bypasses the tenant context: use a TenantPool from tenantry, or list this module in the rule\'s `allow` option if it legitimately needs a raw connection (migrations, control plane).',
      useTenantPool: 'Construct the TenantPool imported in this module instead.',
    },
  },
  defaultOptions: [{ allow: [] }],
  create(context, [options]) {
    if (matchesAnyGlob(context.filename, options.allow ?? [], context.cwd)) return {};
    // keyed by the variable, not its name: a parameter that shadows `Pool` is not pg's Pool
    const bindings = new Map<TSESLint.Scope.Variable, Binding>();
    let tenantPoolName: string | undefined;

    function bind(declarator: TSESTree.Node, local: string, binding: Binding): void {
      const variable = context.sourceCode.getDeclaredVariables(declarator).find((v) => v.name === local);
      if (variable) bindings.set(variable, binding);
    }

    function bindingOf(id: TSESTree.Identifier): Binding | undefined {
      const variable = ASTUtils.findVariable(context.sourceCode.getScope(id), id);
      return variable ? bindings.get(variable) : undefined;
    }

    // `const pg = require('pg')`, `const { Pool } = require('pg')`
    function requiredModule(init: TSESTree.Expression | null): string | undefined {
      if (
        init?.type === AST_NODE_TYPES.CallExpression &&
        init.callee.type === AST_NODE_TYPES.Identifier &&
        init.callee.name === 'require' &&
        init.arguments[0]?.type === AST_NODE_TYPES.Literal &&
        typeof init.arguments[0].value === 'string' &&
        init.arguments[0].value in DRIVERS
      ) {
        return init.arguments[0].value;
      }
      return undefined;
    }

    function check(node: TSESTree.NewExpression | TSESTree.CallExpression): void {
      const callee = node.callee;
      const verb = node.type === AST_NODE_TYPES.NewExpression ? 'new ' : '';
      if (callee.type === AST_NODE_TYPES.Identifier) {
        const b = bindingOf(callee);
        if (!b) return;
        const driver = DRIVERS[b.module]!;
        if (b.kind === 'default' ? driver.defaultOpens : driver.exports.includes(b.name)) {
          report(node, `${verb}${callee.name}(…)`, b.module, b.kind === 'named' && b.name === 'Pool');
        }
        return;
      }
      // pg.Pool, pg.native.Pool, neon.neon…
      if (callee.type === AST_NODE_TYPES.MemberExpression) {
        let root: TSESTree.Expression = callee;
        while (root.type === AST_NODE_TYPES.MemberExpression) root = root.object;
        if (root.type !== AST_NODE_TYPES.Identifier) return;
        const b = bindingOf(root);
        if (!b) return;
        const prop = propertyName(callee);
        const driver = DRIVERS[b.module]!;
        // `pg.Pool` / `pg.native.Pool` on the module, or `native.Pool` on pg's named `native`
        const opens =
          b.kind === 'default'
            ? prop !== undefined && driver.exports.includes(prop)
            : b.name === 'native' && (prop === 'Pool' || prop === 'Client');
        if (opens) {
          report(node, `${verb}${context.sourceCode.getText(callee)}(…)`, b.module, prop === 'Pool');
        }
      }
    }

    // With TenantPool imported here, `new pg.Pool(config)` → `new TenantPool(config)` is one
    // edit (a suggestion, not a fix: TenantPool also wants a contextSecret in its config).
    function report(
      node: TSESTree.NewExpression | TSESTree.CallExpression,
      what: string,
      module: string,
      isPool: boolean,
    ): void {
      const suggest: TSESLint.SuggestionReportDescriptor<MessageIds>[] =
        isPool && tenantPoolName !== undefined && node.type === AST_NODE_TYPES.NewExpression && module === 'pg'
          ? [{ messageId: 'useTenantPool', fix: (fixer) => fixer.replaceText(node.callee, tenantPoolName!) }]
          : [];
      context.report({ node, messageId: 'rawPool', data: { what, module }, suggest });
    }

    return {
      ImportDeclaration(node) {
        const module = node.source.value;
        for (const s of node.specifiers) {
          if (
            s.type === AST_NODE_TYPES.ImportSpecifier &&
            s.importKind !== 'type' &&
            s.imported.type === AST_NODE_TYPES.Identifier &&
            s.imported.name === 'TenantPool'
          ) {
            tenantPoolName = s.local.name;
          }
        }
        if (!(module in DRIVERS) || node.importKind === 'type') return;
        for (const s of node.specifiers) {
          if (s.type === AST_NODE_TYPES.ImportSpecifier) {
            if (s.importKind === 'type') continue;
            const imported = s.imported.type === AST_NODE_TYPES.Identifier ? s.imported.name : s.imported.value;
            bind(
              s,
              s.local.name,
              imported === 'default' ? { module, kind: 'default' } : { module, kind: 'named', name: imported },
            );
          } else {
            bind(s, s.local.name, { module, kind: 'default' });
          }
        }
      },
      VariableDeclarator(node) {
        const module = requiredModule(node.init);
        if (!module) return;
        if (node.id.type === AST_NODE_TYPES.Identifier) bind(node, node.id.name, { module, kind: 'default' });
        else if (node.id.type === AST_NODE_TYPES.ObjectPattern) {
          for (const p of node.id.properties) {
            if (p.type !== AST_NODE_TYPES.Property || p.value.type !== AST_NODE_TYPES.Identifier) continue;
            const name =
              p.key.type === AST_NODE_TYPES.Identifier ? p.key.name : String((p.key as TSESTree.Literal).value);
            bind(node, p.value.name, { module, kind: 'named', name });
          }
        }
      },
      NewExpression: check,
      CallExpression: check,
    };
  },
});
