import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { TenantEvent } from '../../../src/live/index.js';
import { ROLE_PASSWORD, type TestDatabase } from '../../support/test-database.js';

/** Collects what a subscriber receives; `until` resolves when a predicate over it holds (no timers). */
export class Collector {
  readonly events: TenantEvent[] = [];
  #waiters: Array<{ test: (events: TenantEvent[]) => boolean; resolve: () => void }> = [];

  readonly handle = (event: TenantEvent): void => {
    this.events.push(event);
    this.#waiters = this.#waiters.filter((w) => (w.test(this.events) ? (w.resolve(), false) : true));
  };

  until(test: (events: TenantEvent[]) => boolean): Promise<void> {
    if (test(this.events)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  /** Resolves once an event with `topic` and `payload.mark === mark` arrived. */
  untilMark(mark: string): Promise<void> {
    return this.until((events) => events.some((e) => e.payload.mark === mark));
  }

  get seqs(): number[] {
    return this.events.map((e) => e.seq);
  }
}

/** A raw session of a fresh role that may only connect: LISTENs on `channel` and keeps every notification. */
export async function listenAsStranger(
  db: TestDatabase,
  channel: string,
): Promise<{ role: string; client: pg.Client; seen: pg.Notification[]; close(): Promise<void> }> {
  const role = `${db.name}_spy_${randomBytes(2).toString('hex')}`;
  await db.admin.query(`create role ${role} login password '${ROLE_PASSWORD}'`);
  await db.admin.query(`grant connect on database ${db.name} to ${role}`);
  const url = new URL(db.adminUrl);
  url.username = role;
  url.password = ROLE_PASSWORD;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  const seen: pg.Notification[] = [];
  client.on('notification', (n) => seen.push(n));
  await client.query(`listen ${channel}`);
  return {
    role,
    client,
    seen,
    async close() {
      await client.end();
      await db.admin.query(`revoke connect on database ${db.name} from ${role}`).catch(() => undefined);
    },
  };
}

/** Drops roles made by listenAsStranger (after the database is gone). */
export async function dropRole(rootUrl: string, role: string): Promise<void> {
  const c = new pg.Client({ connectionString: rootUrl });
  await c.connect();
  try {
    await c.query(`drop role if exists ${role}`);
  } finally {
    await c.end();
  }
}
