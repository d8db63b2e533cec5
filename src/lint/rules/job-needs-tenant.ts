import { AST_NODE_TYPES, type TSESTree } from '@typescript-eslint/utils';
import { calleeName, keyName, propertyName } from '../callee-name.js';
import { createRule } from '../create-rule.js';

/** The rule's options (one object, every property optional). */
export type Options = [
  {
    /** Method names that enqueue, on queue-like objects. */
    methods?: string[];
    /** A regular expression (case-insensitive) the receiver's name must match. */
    objectPattern?: string;
    /** Plain functions that enqueue (`enqueue(payload)`). */
    functions?: string[];
    /** Payload keys that carry the tenant. */
    tenantKeys?: string[];
    /** Functions whose callback carries the tenant in context. */
    scopeFunctions?: string[];
  },
];
/** Ids of the rule's messages. */
export type MessageIds = 'jobWithoutTenant';

const DEFAULTS = {
  methods: ['enqueue', 'add', 'send', 'addJob'],
  objectPattern: '(queue|queues|boss|jobs?|worker|workerutils)$',
  functions: ['enqueue', 'addJob'],
  tenantKeys: ['tenantId', 'tenant_id'],
  scopeFunctions: ['runAs'],
};

/**
 * `tenantry/job-needs-tenant`: a job enqueued with neither a tenant in its payload nor a
 * tenant in context would run with no tenant (or, worse, someone else's).
 */
export const jobNeedsTenant = createRule<Options, MessageIds>({
  name: 'job-needs-tenant',
  meta: {
    type: 'problem',
    docs: { description: 'Require enqueued jobs to carry a tenant (payload `tenantId` or inside `runAs`)' },
    schema: [
      {
        type: 'object',
        properties: {
          methods: { type: 'array', items: { type: 'string' } },
          objectPattern: { type: 'string' },
          functions: { type: 'array', items: { type: 'string' } },
          tenantKeys: { type: 'array', items: { type: 'string' } },
          scopeFunctions: { type: 'array', items: { type: 'string' } },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      jobWithoutTenant:
        'This job carries no tenant: put `{{key}}` in its payload, or enqueue it inside runAs(tenantId, …) so the job is scoped to a tenant.',
    },
  },
  defaultOptions: [DEFAULTS],
  create(context, [options]) {
    const methods = new Set(options.methods ?? DEFAULTS.methods);
    const functions = new Set(options.functions ?? DEFAULTS.functions);
    const tenantKeys = new Set(options.tenantKeys ?? DEFAULTS.tenantKeys);
    const scopeFunctions = new Set(options.scopeFunctions ?? DEFAULTS.scopeFunctions);
    const objectPattern = new RegExp(options.objectPattern ?? DEFAULTS.objectPattern, 'i');

    function isEnqueue(callee: TSESTree.Expression): boolean {
      if (callee.type === AST_NODE_TYPES.Identifier) return functions.has(callee.name);
      if (callee.type !== AST_NODE_TYPES.MemberExpression) return false;
      const method = propertyName(callee);
      if (method === undefined || !methods.has(method)) return false;
      const receiver = receiverName(callee.object);
      return receiver !== undefined && objectPattern.test(receiver);
    }

    // Inside the callback of runAs(…) (at any depth), the job is enqueued with a tenant in context.
    function insideScope(node: TSESTree.Node): boolean {
      for (let n: TSESTree.Node | undefined = node.parent; n; n = n.parent) {
        const fn = n.type === AST_NODE_TYPES.ArrowFunctionExpression || n.type === AST_NODE_TYPES.FunctionExpression;
        if (
          fn &&
          n.parent?.type === AST_NODE_TYPES.CallExpression &&
          n.parent.arguments.includes(n as TSESTree.CallExpressionArgument)
        ) {
          const name = calleeName(n.parent.callee);
          if (name !== undefined && scopeFunctions.has(name)) return true;
        }
      }
      return false;
    }

    return {
      CallExpression(node) {
        if (!isEnqueue(node.callee)) return;
        // the payload is the first object literal argument (pg-boss send(name, data), BullMQ
        // add(name, data), enqueue(data)); a payload the rule cannot see is not judged
        const payload = node.arguments.find(
          (a): a is TSESTree.ObjectExpression => a.type === AST_NODE_TYPES.ObjectExpression,
        );
        if (!payload) return;
        for (const p of payload.properties) {
          if (p.type === AST_NODE_TYPES.SpreadElement) return;
          const key = keyName(p.key, p.computed);
          if (key === undefined || tenantKeys.has(key)) return;
        }
        if (insideScope(node)) return;
        context.report({
          node: payload,
          messageId: 'jobWithoutTenant',
          data: { key: [...tenantKeys][0] ?? 'tenantId' },
        });
      },
    };
  },
});

// `queue` in queue.add(), `emailQueue` in this.emailQueue.add(), `boss` in ctx.boss.send()
function receiverName(object: TSESTree.Expression): string | undefined {
  if (object.type === AST_NODE_TYPES.Identifier) return object.name;
  if (object.type === AST_NODE_TYPES.MemberExpression) return propertyName(object);
  return undefined;
}
