import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./ui/main.ts', import.meta.url));

const HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Tenantry console</title>
    <script type="module" src="/console/assets/console.js"></script>
  </head>
  <body>
    <div id="console"><noscript>The console needs JavaScript.</noscript></div>
  </body>
</html>
`;

/**
 * The console's page and script. The script (Preact and htm, app/console/ui) is bundled by
 * esbuild in memory on its first request, from the packages `npm ci` installed: nothing else to
 * install, no build step to remember, nothing fetched at run time. esbuild because it is already
 * in the toolchain (tsx runs on it) and bundles the console in well under a second.
 */
export function consoleAssets(): { html(): string; script(): Promise<string> } {
  let script: Promise<string> | undefined;
  return {
    html: () => HTML,
    script: () => {
      script ??= build({
        entryPoints: [ENTRY],
        bundle: true,
        write: false,
        format: 'esm',
        target: 'es2022',
        minify: true,
        legalComments: 'none',
        // uPlot's stylesheet, imported as text and put in a <style> by the page (ui/usage-chart.ts)
        loader: { '.css': 'text' },
        logLevel: 'silent',
      }).then(
        (result) => result.outputFiles[0]!.text,
        (error: unknown) => {
          script = undefined; // a failed build is retried by the next request
          throw error;
        },
      );
      return script;
    },
  };
}
