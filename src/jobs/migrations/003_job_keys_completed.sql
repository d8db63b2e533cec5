-- jobs 003: a job key's run that completed is recorded (src/jobs/job-keys.ts). Binding a key to
-- its job id alone let a finished row put back under its OWN id (pg-boss: its state reset to
-- `created`; graphile-worker, which deletes completed rows: re-inserted under the old id; BullMQ:
-- moved back to wait) run again. A key whose run completed is refused from then on (JOB_REPLAYED)
-- in that queue, its dead-letter queue's row likewise; a failed or refused run leaves it unset, so
-- the queue's retries and an operator's re-drive still run. Owner role only (as 002).
ALTER TABLE tenantry_private.job_keys ADD COLUMN IF NOT EXISTS completed_at timestamptz;
