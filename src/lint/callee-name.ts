import { AST_NODE_TYPES, type TSESTree } from '@typescript-eslint/utils';

/** The name a call is made by: `f()` → f, `a.b.f()` → f, `a['f']()` → f; undefined otherwise. */
export function calleeName(callee: TSESTree.Expression): string | undefined {
  if (callee.type === AST_NODE_TYPES.Identifier) return callee.name;
  if (callee.type === AST_NODE_TYPES.MemberExpression) return propertyName(callee);
  return undefined;
}

/** The property of `a.b` / `a['b']`, when it is known without evaluating anything. */
export function propertyName(member: TSESTree.MemberExpression): string | undefined {
  if (!member.computed && member.property.type === AST_NODE_TYPES.Identifier) return member.property.name;
  if (member.property.type === AST_NODE_TYPES.Literal && typeof member.property.value === 'string')
    return member.property.value;
  return undefined;
}

/** The name of a key of an object literal or type member, when it is written out. */
export function keyName(key: TSESTree.Node, computed: boolean): string | undefined {
  if (key.type === AST_NODE_TYPES.Identifier && !computed) return key.name;
  if (key.type === AST_NODE_TYPES.Literal && (typeof key.value === 'string' || typeof key.value === 'number'))
    return String(key.value);
  if (key.type === AST_NODE_TYPES.TemplateLiteral && key.expressions.length === 0)
    return key.quasis[0]!.value.cooked ?? undefined;
  return undefined;
}
