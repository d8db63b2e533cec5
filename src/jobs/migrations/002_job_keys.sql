-- jobs 002: the job keys ledger of tenantry/jobs (src/jobs/job-keys.ts). A signed envelope carries
-- a random job key; the worker records (key, queue) with the job's id on the first run and refuses
-- the key under any other id, so a job row copied or re-inserted under a new id never runs again,
-- while the queue's own retries and an operator's re-drive (same id) do. Owner role only.
CREATE TABLE IF NOT EXISTS tenantry_private.job_keys (
  job_key text NOT NULL,
  -- the queue the job ran in (a dead-letter copy records its own row, bound to its own id)
  queue text NOT NULL,
  job_id text NOT NULL,
  -- when the envelope was sealed: rows older than the keys' retention are deleted, and envelopes
  -- that old are refused
  issued_at timestamptz NOT NULL,
  first_run_at timestamptz NOT NULL DEFAULT now(),
  -- the job failed for good: its dead-letter copy may run (once)
  exhausted boolean NOT NULL DEFAULT false,
  PRIMARY KEY (job_key, queue)
);
CREATE INDEX IF NOT EXISTS job_keys_issued_idx ON tenantry_private.job_keys (issued_at);
REVOKE ALL ON tenantry_private.job_keys FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.job_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
