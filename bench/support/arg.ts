/** The value of `--<key>=<value>` on the command line, or `fallback` (for the small A/B scripts in bench/). */
export function arg(key: string, fallback: string): string {
  return process.argv.find((a) => a.startsWith(`--${key}=`))?.slice(key.length + 3) ?? fallback;
}
