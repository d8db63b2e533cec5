import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { BrandAdmin, type BrandChange } from '../branding/brand-admin.js';
import type { BrandColors } from '../branding/brand-schema.js';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { textTable } from './text-table.js';

interface BrandOptions {
  actor?: string;
  reason?: string;
  json?: boolean;
}

async function withBrands<T>(
  globals: ConnectionOptions,
  slug: string,
  fn: (admin: BrandAdmin, tenantId: string) => Promise<T>,
): Promise<T> {
  return withDatabase(globals, async (db) => {
    const url =
      process.env.TENANTRY_OWNER_DATABASE_URL ??
      (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
    const pool = commandPool({ connectionString: url, max: 2 });
    try {
      const tenant = await new TenantCatalog(pool).get(slug);
      return await fn(new BrandAdmin({ db: pool }), tenant.id);
    } finally {
      await pool.end();
    }
  });
}

const metaOf = (opts: BrandOptions) => ({ actor: opts.actor ?? `cli:${os.userInfo().username}`, reason: opts.reason });

function version(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new CommanderArgumentError('a change number (0, 1, 2…)');
  return n;
}

/** `tenantry tenants brand get|set|history|rollback <slug> …`. */
export function brandCommand(globals: () => ConnectionOptions): Command {
  const cmd = new Command('brand').description("read and change a tenant's brand (validated, versioned, audited)");
  const writer = (c: Command) =>
    c
      .option('--actor <who>', 'who makes the change, kept in the history (default: cli:<login>)')
      .option('--reason <why>', 'why, kept in the history and the audit log');

  cmd
    .command('get <slug>')
    .description("the tenant's brand (its own, or the default) and its version")
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: BrandOptions) => {
      const snap = await withBrands(globals(), slug, (admin, id) => admin.get(id));
      if (opts.json) {
        console.log(JSON.stringify(snap, null, 2));
        return;
      }
      const { brand } = snap;
      const logo = brand.logo
        ? `${brand.logo.contentType} ${brand.logo.width}×${brand.logo.height}, ${brand.logo.size} bytes`
        : '—';
      console.log(
        textTable(
          ['field', 'value'],
          [
            ['displayName', brand.displayName],
            ['emailSenderName', brand.emailSenderName],
            ...Object.entries(brand.colors).map(([k, v]) => [`colors.${k}`, v]),
            ['logo', logo],
          ],
        ),
      );
      console.log(`source: ${snap.source} · change ${snap.version}`);
    });

  writer(cmd.command('set <slug>'))
    .description('change some fields (the others keep their value); refused as a whole when any is invalid')
    .option('--name <text>', 'display name')
    .option('--sender <text>', 'e-mail sender name')
    .option('--primary <#rrggbb>', 'primary colour (buttons, links)')
    .option('--on-primary <#rrggbb>', 'text on the primary colour')
    .option('--background <#rrggbb>', 'page background')
    .option('--text <#rrggbb>', 'text colour')
    .option('--logo <file>', 'a PNG, JPEG or WebP image (checked by its content)')
    .option('--no-logo', 'remove the logo')
    .action(
      async (
        slug: string,
        opts: BrandOptions & {
          name?: string;
          sender?: string;
          primary?: string;
          onPrimary?: string;
          background?: string;
          text?: string;
          logo?: string | boolean;
        },
      ) => {
        const colors: Partial<BrandColors> = {};
        if (opts.primary !== undefined) colors.primary = opts.primary;
        if (opts.onPrimary !== undefined) colors.onPrimary = opts.onPrimary;
        if (opts.background !== undefined) colors.background = opts.background;
        if (opts.text !== undefined) colors.text = opts.text;
        const change: BrandChange = {
          ...(opts.name !== undefined ? { displayName: opts.name } : {}),
          ...(opts.sender !== undefined ? { emailSenderName: opts.sender } : {}),
          ...(Object.keys(colors).length ? { colors } : {}),
          ...(typeof opts.logo === 'string' ? { logo: await readFile(opts.logo) } : {}),
          ...(opts.logo === false ? { logo: null } : {}),
        };
        const snap = await withBrands(globals(), slug, (admin, id) => admin.set(id, change, metaOf(opts)));
        console.log(`${slug}: brand saved (change ${snap.version})`);
      },
    );

  cmd
    .command('history <slug>')
    .description("the tenant's brand changes, newest first")
    .option('--limit <n>', 'how many lines', (v) => Number(v), 50)
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: BrandOptions & { limit: number }) => {
      const rows = await withBrands(globals(), slug, (admin, id) => admin.history(id, { limit: opts.limit }));
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      console.log(
        textTable(
          ['change', 'when', 'action', 'name', 'who', 'why'],
          rows.map((r) => [
            String(r.version),
            r.changedAt.toISOString(),
            r.action,
            r.newBrand?.displayName ?? '(default)',
            r.actor,
            r.reason ?? '',
          ]),
        ),
      );
    });

  writer(cmd.command('rollback <slug> <version>'))
    .description('put the brand back as it was right after change <version> (0: the default), as a new change')
    .action(async (slug: string, to: string, opts: BrandOptions) => {
      const snap = await withBrands(globals(), slug, (admin, id) => admin.rollback(id, version(to), metaOf(opts)));
      console.log(`${slug}: brand as after change ${to} (change ${snap.version})`);
    });
  return cmd;
}
