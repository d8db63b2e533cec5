/**
 * The TypeScript snippets of docs/*.md, type-checked against the library's real declarations.
 *
 * A docs snippet is usually a fragment: it uses a `pool` or a `tenantId` the page introduced in
 * prose. Each ```ts block is compiled as a module of its own, in two passes: the first finds the
 * names it uses but never declares (TS2304); each becomes an import when `tenantry` exports it, an
 * ambient `any` otherwise. The second pass must then compile without any error, so an imported
 * name the package does not export, a misspelt option or method of a Tenantry type, or a wrong
 * argument type fails. A block preceded by `<!-- snippet: skip (reason) -->` is not checked.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface DocSnippet {
  /** `docs/usage.md:42`: the line of the opening fence. */
  readonly where: string;
  readonly code: string;
}

export interface SnippetProblem {
  readonly where: string;
  readonly message: string;
}

const ROOT = path.resolve(import.meta.dirname, '../..');
const FENCES = { ts: /^```(ts|typescript)\s*$/, sql: /^```sql\s*$/ };
const SKIP = /<!--\s*snippet:\s*skip\b/;

/** Every ```ts (or ```sql) block of docs/*.md, except those marked skip. */
export function docSnippets(language: keyof typeof FENCES = 'ts', docsDir = path.join(ROOT, 'docs')): DocSnippet[] {
  const FENCE = FENCES[language];
  const snippets: DocSnippet[] = [];
  for (const file of readdirSync(docsDir).filter((f) => f.endsWith('.md'))) {
    const lines = readFileSync(path.join(docsDir, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!FENCE.test(lines[i]!)) continue;
      const end = lines.findIndex((line, j) => j > i && line.startsWith('```'));
      if (end < 0) break;
      if (!SKIP.test(lines[i - 1] ?? '')) {
        snippets.push({ where: `docs/${file}:${i + 1}`, code: lines.slice(i + 1, end).join('\n') });
      }
      i = end;
    }
  }
  return snippets;
}

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  // a fragment's callbacks often have no contextual type: their parameters are what the prose says
  noImplicitAny: false,
  noEmit: true,
  skipLibCheck: true,
  esModuleInterop: true,
  types: ['node'],
  lib: ['lib.es2023.d.ts'],
  customConditions: ['tenantry-source'],
};

/** Type-checks the snippets; an empty answer means every one compiles. */
export function checkSnippets(snippets: DocSnippet[]): SnippetProblem[] {
  const entry = path.join(ROOT, 'src/index.ts');
  const fileOf = (i: number): string => path.join(ROOT, 'docs', `__snippet_${i}.ts`);
  // the library's files are parsed once for both passes
  const parsed = new Map<string, ts.SourceFile | undefined>();
  let previous: ts.Program | undefined;
  const compile = (sources: string[]): { program: ts.Program; diagnostics: ts.Diagnostic[][] } => {
    const virtual = new Map(sources.map((source, i) => [fileOf(i), source]));
    const host = ts.createCompilerHost(OPTIONS);
    const { getSourceFile, fileExists, readFile } = host;
    host.getSourceFile = (name, language, ...rest) => {
      if (virtual.has(name)) return ts.createSourceFile(name, virtual.get(name)!, language);
      if (!parsed.has(name)) parsed.set(name, getSourceFile.call(host, name, language, ...rest));
      return parsed.get(name);
    };
    host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
    host.readFile = (name) => virtual.get(name) ?? readFile.call(host, name);
    const program = ts.createProgram([entry, ...virtual.keys()], OPTIONS, host, previous);
    previous = program;
    const diagnostics = sources.map((_, i) => {
      const file = program.getSourceFile(fileOf(i))!;
      return [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
    });
    return { program, diagnostics };
  };

  const first = compile(snippets.map((s) => `${withoutLocalImports(s.code)}\nexport {};\n`));
  const exported = exportsOf(first.program, entry);
  const completed = snippets.map((snippet, i) => {
    const undeclared = new Set(
      first.diagnostics[i]!.filter((d) => UNDECLARED.has(d.code)).map(
        (d) => /'([^']+)'/.exec(ts.flattenDiagnosticMessageText(d.messageText, ' '))?.[1] ?? '',
      ),
    );
    const imports = [...undeclared].filter((name) => exported.has(name));
    // a name the prose introduced may be used as a value or as a type
    const ambient = [...undeclared].filter((name) => name && !exported.has(name));
    // the prelude takes one line, so a problem's line is the snippet's line + 1
    const prelude =
      (imports.length ? `import { ${imports.join(', ')} } from 'tenantry'; ` : '') +
      ambient.map((name) => `declare const ${name}: any; type ${name} = any;`).join(' ');
    return `${prelude}\n${withoutLocalImports(snippet.code)}\nexport {};\n`;
  });
  const second = compile(completed).diagnostics;
  return snippets.flatMap((snippet, i) =>
    second[i]!.map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
      const [doc, fence] = snippet.where.split(':');
      return {
        where: `${doc}:${Number(fence) + line}`,
        message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
      };
    }),
  );
}

/**
 * The reader's own modules (`import { buildApp } from '../src/app.js'`) do not exist here: their
 * names become ambient like any other name the prose introduced (the import line is blanked, so
 * lines keep their numbers).
 */
function withoutLocalImports(code: string): string {
  return code.replace(/^import\s+(?:type\s+)?\{[^}]*\}\s+from\s+'\.{1,2}\/[^']*';?[ \t]*$/gm, '');
}

/** Cannot find name 'x' (2304, 2552 with a suggestion); no value for the shorthand property 'x' (18004). */
const UNDECLARED = new Set([2304, 2552, 18004]);

/** The names `tenantry`'s main entry exports (values and types). */
function exportsOf(program: ts.Program, entry: string): Set<string> {
  const checker = program.getTypeChecker();
  const symbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  return new Set(checker.getExportsOfModule(symbol).map((s) => s.name));
}
