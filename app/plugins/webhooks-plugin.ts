import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { definePlugin } from 'tenantry/plugins';
import type { JobContext } from 'tenantry/jobs';
import { adminOf } from '../auth/tenant-scope.js';
import { ApiError, notFound } from '../http/api-error.js';
import { parseInput, uuid } from '../http/validation.js';
import type { PluginServices } from './plugin-services.js';
import { signWebhook } from './webhook-signature.js';
import { mayBePublic } from './egress-guard.js';

/** Events a tenant can subscribe its endpoints to. */
export const WEBHOOK_EVENTS = ['recording.created'] as const;

/** Payload of the `webhooks.deliver` job: the delivery's id only (the body is in the tenant's table). */
export interface DeliverJob {
  deliveryId: string;
}

/** Retries of a delivery after its first attempt (with backoff): 4 attempts in all. */
export const WEBHOOK_RETRIES = 3;

const idParams = z.object({ id: uuid() });
// every statement names the tenant in context itself (the query guard's enforce mode; app/recordings)
// a plain call, not a sub-select: Citus refuses sub-selects in INSERTs and target lists (docs/citus.md)
const TENANT = 'tenantry.current_tenant_id()';
const newEndpoint = z
  .object({
    url: z
      .string()
      .max(2000)
      .refine((raw) => {
        try {
          const u = new URL(raw);
          return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password;
        } catch {
          return false;
        }
      }, 'url must be an http(s) URL without credentials'),
    events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length),
  })
  .strict();

/** Why an attempt got no answer, as a code: the guard's refusal, a timeout, or anything else. */
function deliveryFailure(error: unknown): string {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const name = (e as { name?: unknown }).name;
    if (code === 'EGRESS_REFUSED') return 'EGRESS_REFUSED';
    if (name === 'TimeoutError' || name === 'AbortError') return 'TIMEOUT';
  }
  return 'UNREACHABLE';
}

/** A failed attempt: the queue stores this class and code only, never the URL, body or secret. */
export class WebhookDeliveryError extends Error {
  readonly code = 'WEBHOOK_DELIVERY_FAILED';
  constructor(readonly status: number | null) {
    super(status === null ? 'webhook delivery failed (no answer in time)' : `webhook answered ${status}`);
    this.name = 'WebhookDeliveryError';
  }
}

interface EndpointRow {
  id: string;
  url: string;
  events: string[];
  created_at: Date;
}

const endpoint = (r: EndpointRow) => ({
  id: r.id,
  url: r.url,
  events: r.events,
  createdAt: r.created_at.toISOString(),
});

/**
 * Outgoing webhooks: each tenant registers endpoints; events of the tenant are delivered to them
 * as JSON, signed with HMAC-SHA256 over `<timestamp>.<body>` with the tenant's own secret
 * (headers `webhook-id`, `webhook-timestamp`, `webhook-signature: v1=<hex>`), by a job with
 * retries and a bounded timeout. The secret is shown once (when created or rotated), never
 * logged, never in an error. Enabled per tenant.
 */
export function webhooksPlugin(services: PluginServices) {
  const db = () => services.dataPool();

  /** The tenant's secret, created on first use; `created` says whether this call made it. */
  async function secret(rotate = false): Promise<{ secret: string; created: boolean }> {
    const fresh = randomBytes(32).toString('base64url');
    const { rows } = await db().query<{ secret: string; created: boolean }>(
      rotate
        ? `insert into webhook_secrets (tenant_id, secret) values (${TENANT}, $1)
           on conflict (tenant_id) do update set secret = excluded.secret, created_at = now()
           returning secret, true as created`
        : `with made as (
             insert into webhook_secrets (tenant_id, secret) values (${TENANT}, $1)
             on conflict (tenant_id) do nothing returning secret)
           select secret, true as created from made
           union all select secret, false from webhook_secrets
            where tenant_id = ${TENANT} and not exists (select 1 from made)`,
      [fresh],
    );
    return rows[0]!;
  }

  return definePlugin<FastifyRequest, FastifyReply>({
    name: 'webhooks',
    version: '1.0.0',
    description: 'signed outgoing webhooks of the tenant’s events',
    migrations: [
      {
        version: 1101,
        name: 'webhooks',
        sql: `create table webhook_secrets (
  tenant_id uuid not null default tenantry.current_tenant_id() primary key,
  secret text not null check (length(secret) >= 32),
  created_at timestamptz not null default now()
);
select tenantry.register_tenant_table('webhook_secrets');
create table webhook_endpoints (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  url text not null check (length(url) <= 2000),
  events text[] not null check (cardinality(events) between 1 and 20),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
select tenantry.register_tenant_table('webhook_endpoints');
create table webhook_deliveries (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  endpoint_id uuid not null,
  event text not null,
  body text not null check (length(body) <= 65536),
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  last_status integer,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  primary key (tenant_id, id)
);
create index webhook_deliveries_page_idx on webhook_deliveries (tenant_id, created_at desc);
select tenantry.register_tenant_table('webhook_deliveries');`,
      },
      {
        version: 1102,
        name: 'webhook_delivery_errors',
        // why the last attempt failed, as a code (never the URL or the receiver's answer)
        sql: `alter table webhook_deliveries add column last_error text
  check (last_error is null or last_error ~ '^[A-Z_]{1,40}$');`,
      },
    ],
    settings: z.object({
      /** How long one attempt may wait for the receiver (ms). */
      timeoutMs: z.number().int().min(100).max(10_000).default(5_000),
    }),
    routes(r) {
      r.post('/webhooks/endpoints', async (request, reply) => {
        adminOf(request);
        const input = parseInput(newEndpoint, request.body, 'body');
        // what is known without a lookup is refused at once (names are checked again where the
        // delivery connects: a name's addresses can change)
        if (!services.allowPrivateEgress && !mayBePublic(new URL(input.url)))
          throw new ApiError(400, 'EGRESS_REFUSED', 'The URL leads to a private, loopback or reserved address', 'url');
        const { rows } = await db().query<EndpointRow>(
          `insert into webhook_endpoints (tenant_id, url, events) values (${TENANT}, $1, $2)
           returning id, url, events, created_at`,
          [input.url, input.events],
        );
        const made = await secret();
        // the secret is shown once, when it is made: the receiver needs it to verify signatures
        return reply.code(201).send({ ...endpoint(rows[0]!), ...(made.created ? { secret: made.secret } : {}) });
      });
      r.get('/webhooks/endpoints', async (request) => {
        adminOf(request);
        const { rows } = await db().query<EndpointRow>(
          `select id, url, events, created_at from webhook_endpoints where tenant_id = ${TENANT} order by created_at, id`,
        );
        return { items: rows.map(endpoint) };
      });
      r.delete('/webhooks/endpoints/:id', async (request, reply) => {
        adminOf(request);
        const { id } = parseInput(idParams, request.params, 'params');
        const { rowCount } = await db().query(`delete from webhook_endpoints where tenant_id = ${TENANT} and id = $1`, [
          id,
        ]);
        if (!rowCount) throw notFound('Endpoint');
        return reply.code(204).send();
      });
      r.post('/webhooks/secret', async (request) => {
        adminOf(request);
        return { secret: (await secret(true)).secret };
      });
      r.get('/webhooks/deliveries', async (request) => {
        adminOf(request);
        const { rows } = await db().query(
          `select id, endpoint_id as "endpointId", event, status, attempts, last_status as "lastStatus",
                  last_error as "lastError", created_at as "createdAt", delivered_at as "deliveredAt"
             from webhook_deliveries where tenant_id = ${TENANT} order by created_at desc limit 100`,
        );
        return { items: rows };
      });
    },
    events: {
      'recording.created': async (payload, ctx) => {
        const { recordingId } = payload as { recordingId: string };
        const body = JSON.stringify({
          type: 'recording.created',
          createdAt: new Date().toISOString(),
          data: { recordingId },
        });
        const { rows } = await db().query<{ id: string }>(
          `insert into webhook_deliveries (tenant_id, endpoint_id, event, body)
           select ${TENANT}, id, 'recording.created', $1 from webhook_endpoints
            where tenant_id = ${TENANT} and 'recording.created' = any(events)
           returning id`,
          [body],
        );
        for (const row of rows) await ctx.enqueue<DeliverJob>('deliver', { deliveryId: row.id });
      },
    },
    jobs: {
      deliver: {
        handler: async ({ deliveryId }: DeliverJob, job: JobContext) => {
          const { rows } = await db().query<{ url: string; body: string; status: string; secret: string | null }>(
            `select e.url, d.body, d.status, s.secret
               from webhook_deliveries d
               join webhook_endpoints e on e.tenant_id = d.tenant_id and e.id = d.endpoint_id
               left join webhook_secrets s on s.tenant_id = d.tenant_id
              where d.tenant_id = ${TENANT} and d.id = $1`,
            [deliveryId],
          );
          const delivery = rows[0];
          // delivered already, or its endpoint removed: nothing to send
          if (!delivery || delivery.status !== 'pending' || !delivery.secret) return;
          const timeoutMs = Number((await services.setting?.('webhooks.timeoutMs')) ?? 5_000);
          const timestamp = Math.floor(Date.now() / 1000);
          let status: number | null = null;
          let failure: string | null = null;
          try {
            const answer = await (services.fetch ?? fetch)(delivery.url, {
              method: 'POST',
              headers: {
                'content-type': 'application/json',
                'webhook-id': deliveryId,
                'webhook-timestamp': String(timestamp),
                'webhook-signature': signWebhook(delivery.secret, timestamp, delivery.body),
              },
              body: delivery.body,
              redirect: 'manual',
              signal: AbortSignal.timeout(timeoutMs),
            });
            status = answer.status;
            await answer.body?.cancel().catch(() => undefined);
          } catch (error) {
            // refused, unreachable or timed out: the error may name the URL, so only a code is kept
            status = null;
            failure = deliveryFailure(error);
          }
          const ok = status !== null && status >= 200 && status < 300;
          if (!ok && failure === null) failure = 'HTTP_STATUS';
          // an address the guard refuses stays refused: no retry
          const last = job.retryCount >= WEBHOOK_RETRIES || failure === 'EGRESS_REFUSED';
          await db().query(
            `update webhook_deliveries set attempts = attempts + 1, last_status = $2, last_error = $5,
                    status = case when $3 then 'delivered' when $4 then 'failed' else status end,
                    delivered_at = case when $3 then now() else delivered_at end
              where tenant_id = ${TENANT} and id = $1`,
            [deliveryId, status, ok, last, ok ? null : failure],
          );
          if (!ok && failure === 'EGRESS_REFUSED') return; // recorded as failed; nothing to retry
          if (!ok) throw new WebhookDeliveryError(status);
        },
        options: { retryLimit: WEBHOOK_RETRIES, retryDelaySeconds: 2, retryBackoff: true, expireInSeconds: 60 },
      },
    },
  });
}
