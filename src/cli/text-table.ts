import Table from 'cli-table3';

// no borders: columns apart by two spaces, as `ps` or `kubectl get` print them (easy to grep and to read in a log)
const PLAIN = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '  ',
};

/**
 * A table as text, one line per row under a header, columns aligned (cli-table3, without borders
 * or colours), trailing blanks trimmed.
 *
 * @example
 * console.log(textTable(['ID', 'SLUG'], tenants.map((t) => [t.id, t.slug])));
 */
export function textTable(head: string[], rows: string[][]): string {
  const table = new Table({
    head,
    chars: PLAIN,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  });
  table.push(...rows);
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}
