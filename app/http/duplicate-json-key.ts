import { visit } from 'jsonc-parser';

/**
 * The path of the first key that appears twice in one object of `text` (valid JSON: parse it
 * first), e.g. `['owner', 'role']`; undefined when every object's keys are distinct.
 *
 * JSON.parse (and Fastify's secure-json-parse) keep the last of two equal keys without a word, so
 * `{"role":"member","role":"owner"}` reads as owner to us and maybe as member to a proxy, a WAF or
 * a log that took the first. No JSON parser of Node's tells duplicates, so the text is walked
 * once more with jsonc-parser's visitor (Microsoft's scanner, the one VS Code uses), which hands
 * over keys already unescaped (`"\u0061"` is `a`).
 */
export function duplicateJsonKey(text: string): string[] | undefined {
  const open: Set<string>[] = [];
  let found: string[] | undefined;
  visit(text, {
    onObjectBegin: () => {
      open.push(new Set());
      return found === undefined; // false: do not descend any further once one is found
    },
    onObjectEnd: () => {
      open.pop();
    },
    onObjectProperty: (property, _offset, _length, _line, _column, pathSupplier) => {
      const keys = open.at(-1);
      if (found !== undefined || keys === undefined) return;
      if (keys.has(property)) found = [...pathSupplier().map(String), property];
      else keys.add(property);
    },
  });
  return found;
}
