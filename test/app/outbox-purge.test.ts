// The purge and the reference server's outbox (app_private.outbox, migration 012): a purged
// tenant's mail (addresses, invitation and confirmation codes) goes with it; the other tenant's
// stays as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantPurger } from '../../src/lifecycle/index.js';
import { outboxPurgeParticipant } from '../../app/identity/outbox-purge.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

let f: AppFixture;

beforeAll(async () => {
  f = await createAppFixture();
});
afterAll(async () => {
  await f?.close();
});

async function invite(token: string, email: string): Promise<string> {
  const res = await f.call('POST', '/invitations', { token, payload: { email, role: 'member' } });
  expect(res.statusCode, res.body).toBe(201);
  return (res.json() as { code: string }).code;
}

/** Every outbox row that names the tenant: by its slug in the message, or its invitations' codes. */
async function mailNaming(slug: string, codes: string[]): Promise<unknown[]> {
  const { rows } = await f.db.admin.query(
    `select id, recipient, template, data from app_private.outbox
      where data->>'tenant' = $1 or data->>'code' = any($2::text[]) order by id`,
    [slug, codes],
  );
  return rows;
}

describe('purge and the outbox', { timeout: 120_000 }, () => {
  it("removes the purged tenant's mail and address confirmations; a purge without the participant is refused; the other tenant's mail stays", async () => {
    const codesA = [
      await invite(await f.token(f.users.sam, f.a), 'new-person@example.test'),
      await invite(await f.token(f.users.alice, f.a), 'second@example.test'),
    ];
    // an accept without an account: a confirmation code mailed to the address
    const accepted = await f.call('POST', '/invitations/accept', {
      payload: { code: codesA[0], email: 'new-person@example.test', password: 'a long enough password 1' },
    });
    expect(accepted.statusCode, accepted.body).toBe(202);
    const codesB = [await invite(await f.token(f.users.carol, f.b), 'b-person@example.test')];
    expect((await mailNaming(f.a.slug, codesA)).length).toBe(3);
    const mailB = await mailNaming(f.b.slug, codesB);
    expect(mailB.length).toBe(1);
    const confirmationsBefore = await f.db.admin.query(
      'select count(*)::int as n from app_private.address_confirmations',
    );
    expect(confirmationsBefore.rows[0].n).toBeGreaterThan(0);

    await f.catalog.softDelete(f.a.id);
    const owners = { home: f.db.ownerUrl };
    // the outbox has a tenant column: a purge that does not account for it is refused, nothing changed
    const bare = new TenantPurger({ catalog: f.db.owner, owners });
    try {
      const refused = await bare
        .run(f.a.slug, { confirm: f.a.slug, operator: 'test', ignoreRetention: true })
        .catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'PURGE_UNACCOUNTED_TABLES' });
      expect((await mailNaming(f.a.slug, codesA)).length).toBe(3);
    } finally {
      await bare.end();
    }

    const purger = new TenantPurger({
      catalog: f.db.owner,
      owners,
      participants: [outboxPurgeParticipant(f.db.owner)],
    });
    try {
      const plan = await purger.plan(f.a.slug, { ignoreRetention: true });
      expect(plan.unaccounted).toEqual([]);
      const report = await purger.run(f.a.slug, { confirm: f.a.slug, operator: 'test', ignoreRetention: true });
      expect(report.valid).toBe(true);
    } finally {
      await purger.end();
    }
    expect(await mailNaming(f.a.slug, codesA)).toEqual([]);
    expect((await f.db.admin.query('select from app_private.outbox where tenant_id = $1', [f.a.id])).rowCount).toBe(0);
    expect(
      (await f.db.admin.query(`select from app_private.address_confirmations where email = 'new-person@example.test'`))
        .rowCount,
    ).toBe(0);
    // the other tenant's mail, as it was
    expect(await mailNaming(f.b.slug, codesB)).toEqual(mailB);
  });
});
