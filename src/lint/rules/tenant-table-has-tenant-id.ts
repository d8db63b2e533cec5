import { AST_NODE_TYPES, type TSESTree } from '@typescript-eslint/utils';
import { calleeName, keyName } from '../callee-name.js';
import { createRule } from '../create-rule.js';
import { isGlobalTable } from '../global-tables.js';

/** The rule's options (one object, every property optional). */
export type Options = [
  {
    /** Names of the tenant column, as a key or as the database column name. */
    columns?: string[];
    /** Tables shared by all tenants (see isGlobalTable for the patterns). */
    globalTables?: string[];
    /** Kysely database interfaces (or type aliases) whose members are tables. */
    interfaces?: string[];
    /** Drizzle table builders: `pgTable('name', { … })`. */
    tableFunctions?: string[];
  },
];
/** Ids of the rule's messages. */
export type MessageIds = 'missingTenantColumn';

const DEFAULTS = {
  columns: ['tenant_id', 'tenantId'],
  globalTables: [] as string[],
  interfaces: ['Database', 'DB'],
  tableFunctions: ['pgTable'],
};

// 'unknown' when the columns come from somewhere a syntactic rule cannot see (a spread, an
// imported type): such tables are not judged.
type Verdict = 'has' | 'missing' | 'unknown';

type TypeDeclaration = TSESTree.TSInterfaceDeclaration | TSESTree.TSTypeAliasDeclaration;

/**
 * `tenantry/tenant-table-has-tenant-id`: Drizzle `pgTable` definitions and Kysely database
 * interfaces whose tables have no tenant column, unless listed as global.
 */
export const tenantTableHasTenantId = createRule<Options, MessageIds>({
  name: 'tenant-table-has-tenant-id',
  meta: {
    type: 'problem',
    docs: { description: 'Require a tenant column in the table definitions of tenant-owned tables' },
    schema: [
      {
        type: 'object',
        properties: {
          columns: { type: 'array', items: { type: 'string' } },
          globalTables: { type: 'array', items: { type: 'string' } },
          interfaces: { type: 'array', items: { type: 'string' } },
          tableFunctions: { type: 'array', items: { type: 'string' } },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      missingTenantColumn:
        'Table "{{table}}" has no tenant column ({{columns}}): add one so Row Level Security can scope it, or list the table in `globalTables` if all tenants share it.',
    },
  },
  defaultOptions: [DEFAULTS],
  create(context, [options]) {
    const columns = new Set(options.columns ?? DEFAULTS.columns);
    const globalTables = options.globalTables ?? DEFAULTS.globalTables;
    const interfaces = new Set(options.interfaces ?? DEFAULTS.interfaces);
    const tableFunctions = new Set(options.tableFunctions ?? DEFAULTS.tableFunctions);
    const declarations = new Map<string, TypeDeclaration>();
    // `import { pgTable as table } from 'drizzle-orm/pg-core'`: local names of table builders
    const builderAliases = new Set<string>();
    // `const app = pgSchema('app')`: `app.table('users', …)` defines app.users
    const schemas = new Map<string, string>();
    const columnList = [...columns].join(' or ');

    function report(node: TSESTree.Node, table: string): void {
      if (isGlobalTable(table, globalTables)) return;
      context.report({ node, messageId: 'missingTenantColumn', data: { table, columns: columnList } });
    }

    // --- Drizzle ---------------------------------------------------------------------------

    // `tenantId: uuid('tenant_id').notNull()`: the database name is the builder's first argument
    function builderColumnName(value: TSESTree.Node): string | undefined {
      let n: TSESTree.Node = value;
      let name: string | undefined;
      while (n.type === AST_NODE_TYPES.CallExpression) {
        const first = n.arguments[0];
        if (first?.type === AST_NODE_TYPES.Literal && typeof first.value === 'string') name = first.value;
        if (n.callee.type !== AST_NODE_TYPES.MemberExpression) break;
        n = n.callee.object;
      }
      return name;
    }

    function objectVerdict(object: TSESTree.ObjectExpression): Verdict {
      let verdict: Verdict = 'missing';
      for (const p of object.properties) {
        if (p.type === AST_NODE_TYPES.SpreadElement) {
          verdict = 'unknown';
          continue;
        }
        const key = keyName(p.key, p.computed);
        if (key === undefined) verdict = 'unknown';
        else if (columns.has(key)) return 'has';
        const dbName = builderColumnName(p.value);
        if (dbName !== undefined && columns.has(dbName)) return 'has';
      }
      return verdict;
    }

    // `{ … }` or `(t) => ({ … })` (Drizzle's callback form)
    function columnsObject(arg: TSESTree.Node | undefined): TSESTree.ObjectExpression | undefined {
      if (arg?.type === AST_NODE_TYPES.ObjectExpression) return arg;
      if (arg?.type === AST_NODE_TYPES.ArrowFunctionExpression || arg?.type === AST_NODE_TYPES.FunctionExpression) {
        if (arg.body.type === AST_NODE_TYPES.ObjectExpression) return arg.body;
        if (arg.body.type === AST_NODE_TYPES.BlockStatement) {
          const ret = arg.body.body.find(
            (s): s is TSESTree.ReturnStatement => s.type === AST_NODE_TYPES.ReturnStatement,
          );
          if (ret?.argument?.type === AST_NODE_TYPES.ObjectExpression) return ret.argument;
        }
      }
      return undefined;
    }

    // --- Kysely ----------------------------------------------------------------------------

    function membersVerdict(members: readonly TSESTree.TypeElement[]): Verdict {
      let verdict: Verdict = 'missing';
      for (const m of members) {
        if (m.type !== AST_NODE_TYPES.TSPropertySignature) {
          if (m.type === AST_NODE_TYPES.TSIndexSignature) verdict = 'unknown';
          continue;
        }
        const key = keyName(m.key, m.computed);
        if (key === undefined) verdict = 'unknown';
        else if (columns.has(key)) return 'has';
      }
      return verdict;
    }

    function typeVerdict(type: TSESTree.TypeNode, seen: Set<string>): Verdict {
      switch (type.type) {
        case AST_NODE_TYPES.TSTypeLiteral:
          return membersVerdict(type.members);
        case AST_NODE_TYPES.TSIntersectionType:
        case AST_NODE_TYPES.TSUnionType: {
          const parts = type.types.map((t) => typeVerdict(t, seen));
          // a union needs the column in every member; an intersection in one
          if (type.type === AST_NODE_TYPES.TSUnionType)
            return parts.includes('missing') ? 'missing' : parts.includes('unknown') ? 'unknown' : 'has';
          return parts.includes('has') ? 'has' : parts.includes('unknown') ? 'unknown' : 'missing';
        }
        case AST_NODE_TYPES.TSTypeReference: {
          const name = type.typeName.type === AST_NODE_TYPES.Identifier ? type.typeName.name : undefined;
          const declaration = name === undefined ? undefined : declarations.get(name);
          if (declaration && name !== undefined && !seen.has(name))
            return declarationVerdict(declaration, new Set([...seen, name]));
          // Selectable<RecordingTable>, Readonly<…>: judge the wrapped type
          const wrapped = type.typeArguments?.params[0];
          return wrapped ? typeVerdict(wrapped, seen) : 'unknown';
        }
        default:
          return 'unknown';
      }
    }

    function declarationVerdict(declaration: TypeDeclaration, seen: Set<string>): Verdict {
      if (declaration.type === AST_NODE_TYPES.TSTypeAliasDeclaration)
        return typeVerdict(declaration.typeAnnotation, seen);
      const own = membersVerdict(declaration.body.body);
      if (own === 'has') return 'has';
      let verdict = own;
      for (const heritage of declaration.extends) {
        const base =
          heritage.expression.type === AST_NODE_TYPES.Identifier
            ? declarations.get(heritage.expression.name)
            : undefined;
        const name = heritage.expression.type === AST_NODE_TYPES.Identifier ? heritage.expression.name : '';
        const v = base && !seen.has(name) ? declarationVerdict(base, new Set([...seen, name])) : 'unknown';
        if (v === 'has') return 'has';
        if (v === 'unknown') verdict = 'unknown';
      }
      return verdict;
    }

    function checkDatabase(members: readonly TSESTree.TypeElement[]): void {
      for (const m of members) {
        if (m.type !== AST_NODE_TYPES.TSPropertySignature || !m.typeAnnotation) continue;
        const table = keyName(m.key, m.computed);
        if (table === undefined) continue;
        if (typeVerdict(m.typeAnnotation.typeAnnotation, new Set()) === 'missing') report(m.key, table);
      }
    }

    return {
      Program(program) {
        // table types are declared at the top level of the module, usually next to the Database
        for (const statement of program.body) {
          const d =
            statement.type === AST_NODE_TYPES.ExportNamedDeclaration ||
            statement.type === AST_NODE_TYPES.ExportDefaultDeclaration
              ? statement.declaration
              : statement;
          if (d?.type === AST_NODE_TYPES.TSInterfaceDeclaration || d?.type === AST_NODE_TYPES.TSTypeAliasDeclaration) {
            declarations.set(d.id.name, d);
          }
        }
      },
      TSInterfaceDeclaration(node) {
        if (interfaces.has(node.id.name)) checkDatabase(node.body.body);
      },
      TSTypeAliasDeclaration(node) {
        if (interfaces.has(node.id.name) && node.typeAnnotation.type === AST_NODE_TYPES.TSTypeLiteral)
          checkDatabase(node.typeAnnotation.members);
      },
      ImportSpecifier(node) {
        const from = node.parent.type === AST_NODE_TYPES.ImportDeclaration ? node.parent.source.value : '';
        const imported = node.imported.type === AST_NODE_TYPES.Identifier ? node.imported.name : node.imported.value;
        if (from.startsWith('drizzle-orm') && tableFunctions.has(imported)) builderAliases.add(node.local.name);
      },
      VariableDeclarator(node) {
        const init = node.init;
        if (
          node.id.type === AST_NODE_TYPES.Identifier &&
          init?.type === AST_NODE_TYPES.CallExpression &&
          calleeName(init.callee) === 'pgSchema' &&
          init.arguments[0]?.type === AST_NODE_TYPES.Literal &&
          typeof init.arguments[0].value === 'string'
        ) {
          schemas.set(node.id.name, init.arguments[0].value);
        }
      },
      CallExpression(node) {
        const callee = node.callee;
        const name = calleeName(callee);
        if (name === undefined) return;
        const schema =
          callee.type === AST_NODE_TYPES.MemberExpression &&
          callee.object.type === AST_NODE_TYPES.Identifier &&
          name === 'table'
            ? schemas.get(callee.object.name)
            : undefined;
        const builder =
          tableFunctions.has(name) || (callee.type === AST_NODE_TYPES.Identifier && builderAliases.has(name));
        if (!builder && schema === undefined) return;
        const object = columnsObject(node.arguments[1]);
        if (!object || objectVerdict(object) !== 'missing') return;
        const first = node.arguments[0];
        const bare =
          first?.type === AST_NODE_TYPES.Literal && typeof first.value === 'string'
            ? first.value
            : first?.type === AST_NODE_TYPES.TemplateLiteral && first.expressions.length === 0
              ? (first.quasis[0]!.value.cooked ?? '(dynamic)')
              : '(dynamic)';
        report(first ?? node, schema === undefined ? bare : `${schema}.${bare}`);
      },
    };
  },
});
