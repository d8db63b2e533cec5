-- jobs 001: the ledgers of tenantry/jobs (src/jobs). Owner role only: the worker and the
-- enqueuing side reach them through the owner pool (the catalog's), never the app role.

-- fair ordering: per queue and tenant, jobs enqueued and jobs ended. A new job's priority is
-- minus its tenant's backlog, so a tenant with a short backlog runs before a long one's burst.
CREATE TABLE IF NOT EXISTS tenantry_private.job_backlog (
  queue text NOT NULL,
  -- the tenant's id, or '' for global jobs
  tenant_key text NOT NULL,
  enqueued bigint NOT NULL DEFAULT 0 CHECK (enqueued >= 0),
  done bigint NOT NULL DEFAULT 0 CHECK (done >= 0),
  PRIMARY KEY (queue, tenant_key)
);
REVOKE ALL ON tenantry_private.job_backlog FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.job_backlog ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- cron fan-out: which tenants one tick of a scheduled job was sent to. A row commits with its
-- tenant's job (one transaction), so a fan-out that crashes and runs again sends the rest only.
CREATE TABLE IF NOT EXISTS tenantry_private.job_fanout (
  queue text NOT NULL,
  tick text NOT NULL,
  tenant_id uuid NOT NULL,
  sent_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (queue, tick, tenant_id)
);
CREATE INDEX IF NOT EXISTS job_fanout_sent_idx ON tenantry_private.job_fanout (sent_at);
REVOKE ALL ON tenantry_private.job_fanout FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.job_fanout ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
