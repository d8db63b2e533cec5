import { ASTUtils, AST_NODE_TYPES, type TSESLint, type TSESTree } from '@typescript-eslint/utils';
import { calleeName, keyName, propertyName } from '../callee-name.js';
import { createRule } from '../create-rule.js';

/** The rule's options (one object, every property optional). */
export type Options = [
  {
    /** Methods taking SQL text: judged when the text is built with a value and looks like SQL. */
    methods?: string[];
    /** Methods that splice their argument into SQL verbatim: any non-constant argument is judged. */
    rawMethods?: string[];
    /** Functions whose result is safe to splice (quoting helpers, number conversions). */
    safeFunctions?: string[];
  },
];
/** Ids of the rule's messages. */
export type MessageIds = 'concat' | 'raw';

const DEFAULTS = {
  methods: ['query', 'execute'],
  rawMethods: ['raw', 'unsafe', 'lit'],
  safeFunctions: [
    'quoteIdent',
    'quoteLiteral',
    'quoteQualified',
    'escapeIdentifier',
    'escapeLiteral',
    'Number',
    'parseInt',
  ],
};

// Statements start with one of these; a fragment (a WHERE clause built apart) contains a clause word.
const STARTS_SQL =
  /^(select|insert|update|delete|with|merge|create|alter|drop|truncate|grant|revoke|copy|call|do|explain|values|table|lock|set|reset|prepare|execute|declare|refresh|comment|analyze|vacuum|notify|begin|start|commit|rollback|savepoint|release)\b/i;
const CLAUSE =
  /\b(select|from|where|into|values|join|returning|order\s+by|group\s+by|limit|offset|having|on\s+conflict)\b/i;

/** True when `text` (with `?` where values go) reads like SQL. */
export function looksLikeSql(text: string): boolean {
  const head = text.replace(/^(\s|\(|--[^\n]*\n?|\/\*[\s\S]*?\*\/)*/, '');
  return STARTS_SQL.test(head) || CLAUSE.test(text);
}

interface Shape {
  /** The constant text, with `?` for each value spliced in. */
  text: string;
  /** The spliced expressions that are neither constant nor safe. */
  unsafe: TSESTree.Node[];
  /** Whether the text is built (template with values, `+`), as opposed to one value. */
  built: boolean;
}

/**
 * `tenantry/no-sql-concat`: SQL text built from values (concatenation, template literals with
 * `${…}`) reaching a query method, or a non-constant argument of `sql.raw` / `sql.unsafe` /
 * `sql.lit`. Tagged templates (`sql\`… ${x}\``) parameterise and are fine.
 */
export const noSqlConcat = createRule<Options, MessageIds>({
  name: 'no-sql-concat',
  meta: {
    type: 'problem',
    docs: { description: 'Disallow SQL built from values by concatenation or interpolation, and non-constant raw SQL' },
    schema: [
      {
        type: 'object',
        properties: {
          methods: { type: 'array', items: { type: 'string' } },
          rawMethods: { type: 'array', items: { type: 'string' } },
          safeFunctions: { type: 'array', items: { type: 'string' } },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      concat:
        'SQL built from a value by {{how}} reaches {{sink}}(): pass values as parameters ($1, $2…) or use a tagged sql`…` template, and quote identifiers with a quoting helper.',
      raw: '{{sink}}() puts a non-constant value into SQL verbatim: pass it as a parameter (sql`… ${value}`), or use sql.id/sql.ref or a quoting helper for identifiers.',
    },
  },
  defaultOptions: [DEFAULTS],
  create(context, [options]) {
    const methods = new Set(options.methods ?? DEFAULTS.methods);
    const rawMethods = new Set(options.rawMethods ?? DEFAULTS.rawMethods);
    const safeFunctions = new Set(options.safeFunctions ?? DEFAULTS.safeFunctions);
    const source = context.sourceCode;

    // The expression a `const` name stands for, when it has exactly one, visible here.
    function constInit(id: TSESTree.Identifier): TSESTree.Expression | undefined {
      const variable = ASTUtils.findVariable(source.getScope(id), id);
      const def = variable?.defs.length === 1 ? variable.defs[0] : undefined;
      if (
        def?.type === 'Variable' &&
        def.parent.kind === 'const' &&
        def.node.id.type === AST_NODE_TYPES.Identifier &&
        def.node.init
      ) {
        return def.node.init;
      }
      return undefined;
    }

    // `seen` holds the nodes being resolved, so `const a = a + x`-like cycles end
    function shape(node: TSESTree.Node, seen: Set<TSESTree.Node> = new Set()): Shape {
      if (seen.has(node)) return { text: '?', unsafe: [node], built: false };
      seen.add(node);
      try {
        return shapeOf(node, seen);
      } finally {
        seen.delete(node);
      }
    }

    function shapeOf(node: TSESTree.Node, seen: Set<TSESTree.Node>): Shape {
      switch (node.type) {
        case AST_NODE_TYPES.Literal:
          return { text: node.value === null ? 'null' : String(node.value), unsafe: [], built: false };
        case AST_NODE_TYPES.TemplateLiteral: {
          let text = node.quasis[0]!.value.cooked ?? '';
          const unsafe: TSESTree.Node[] = [];
          node.expressions.forEach((e, i) => {
            const part = shape(e, seen);
            text += part.text + (node.quasis[i + 1]!.value.cooked ?? '');
            unsafe.push(...part.unsafe);
          });
          return { text, unsafe, built: node.expressions.length > 0 };
        }
        case AST_NODE_TYPES.BinaryExpression: {
          if (node.operator !== '+') break;
          const left = shape(node.left, seen);
          const right = shape(node.right, seen);
          return { text: left.text + right.text, unsafe: [...left.unsafe, ...right.unsafe], built: true };
        }
        case AST_NODE_TYPES.TSAsExpression:
        case AST_NODE_TYPES.TSSatisfiesExpression:
        case AST_NODE_TYPES.TSNonNullExpression:
          return shape(node.expression, seen);
        case AST_NODE_TYPES.Identifier: {
          const init = constInit(node);
          if (init) return shape(init, seen);
          break;
        }
        case AST_NODE_TYPES.CallExpression: {
          const name = calleeName(node.callee);
          if (name !== undefined && safeFunctions.has(name)) return { text: '?', unsafe: [], built: false };
          break;
        }
        default:
          break;
      }
      return { text: '?', unsafe: [node], built: false };
    }

    function sqlArgument(call: TSESTree.CallExpression): TSESTree.Node | undefined {
      const first = call.arguments[0];
      // pg's query config: query({ text, values })
      if (first?.type === AST_NODE_TYPES.ObjectExpression) {
        const text = first.properties.find(
          (p): p is TSESTree.Property => p.type === AST_NODE_TYPES.Property && keyName(p.key, p.computed) === 'text',
        );
        return text?.value;
      }
      return first;
    }

    // `let q = 'select …'; q += ' where a = ' + a; pool.query(q)`: a `let` passed as the SQL is
    // judged by everything written to it (its initializer, `=` and `+=`), in source order.
    function accumulated(id: TSESTree.Identifier): Shape | undefined {
      const variable = ASTUtils.findVariable(source.getScope(id), id);
      const def = variable?.defs.length === 1 ? variable.defs[0] : undefined;
      if (def?.type !== 'Variable' || def.parent.kind === 'const' || def.node.id.type !== AST_NODE_TYPES.Identifier)
        return undefined;
      const writes = variable!.references.flatMap((r) => (r.isWrite() && r.writeExpr ? [r.writeExpr] : []));
      if (writes.length === 0) return undefined;
      const parts = writes.map((w) => shape(w));
      return {
        text: parts.map((p) => p.text).join(''),
        unsafe: parts.flatMap((p) => p.unsafe),
        built: writes.length > 1 || parts.some((p) => p.built),
      };
    }

    function how(node: TSESTree.Node): string {
      let n = node;
      while (n.type === AST_NODE_TYPES.Identifier) {
        const init = constInit(n);
        if (!init) break;
        n = init;
      }
      return n.type === AST_NODE_TYPES.TemplateLiteral ? 'template interpolation' : 'concatenation';
    }

    return {
      CallExpression(node) {
        if (node.callee.type !== AST_NODE_TYPES.MemberExpression) return;
        const method = propertyName(node.callee);
        if (method === undefined) return;
        const sink = source.getText(node.callee);
        if (rawMethods.has(method)) {
          // String.raw is a template tag, not SQL
          if (node.callee.object.type === AST_NODE_TYPES.Identifier && node.callee.object.name === 'String') return;
          const arg = node.arguments[0];
          if (arg && arg.type !== AST_NODE_TYPES.SpreadElement && shape(arg).unsafe.length > 0) {
            context.report({ node: arg, messageId: 'raw', data: { sink } });
          }
          return;
        }
        if (!methods.has(method)) return;
        const arg = sqlArgument(node);
        if (!arg || arg.type === AST_NODE_TYPES.SpreadElement) return;
        const s = (arg.type === AST_NODE_TYPES.Identifier ? accumulated(arg) : undefined) ?? shape(arg);
        if (s.built && s.unsafe.length > 0 && looksLikeSql(s.text)) {
          context.report({ node: arg, messageId: 'concat', data: { sink, how: how(arg) } });
        }
      },
    } satisfies TSESLint.RuleListener;
  },
});
