import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/index.js';
import type { JobContext, TenantJobs } from '../../src/jobs/index.js';
import { createJobs } from '../../app/jobs/jobs-from-env.js';
import { defineRecordingJobs, PROCESS_RECORDING, type ProcessedRecording } from '../../app/jobs/recording-jobs.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

describe('reference server: a new recording is processed by a background job, as its tenant', () => {
  let f: AppFixture;
  let jobs: TenantJobs;
  const processed: { recording: ProcessedRecording; job: JobContext }[] = [];

  beforeAll(async () => {
    f = await createAppFixture({
      jobs: async (db, serverPool) => {
        jobs = createJobs({ ownerUrl: db.ownerUrl, catalog: db.owner, contextSecret: db.contextSecret });
        defineRecordingJobs(jobs, {
          dataPool: serverPool,
          onProcessed: (recording, job) => processed.push({ recording, job }),
        });
        // the owner creates pg-boss's schema on the first start, as npm start does
        await jobs.start();
        return jobs;
      },
    });
    // another instance's worker process (TENANTRY_ROLE=worker), reporting refusals
    await jobs.work({ concurrency: 2 });
  });

  afterAll(async () => {
    await jobs?.stop();
    await f?.close();
  });

  async function waitFor(check: () => boolean): Promise<void> {
    const until = Date.now() + 15_000;
    while (!check()) {
      if (Date.now() > until) throw new Error('not processed in time');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it("processes each tenant's recording as that tenant; B's job never sees A's", async () => {
    const alice = await f.token(f.users.alice, f.a);
    const carol = await f.token(f.users.carol, f.b);
    const payload = { title: 'Standup', durationSeconds: 300, mimeType: 'audio/ogg' };
    const ra = (await f.call('POST', '/recordings', { token: alice, payload })).json() as { id: string };
    const rb = (
      await f.call('POST', '/recordings', { token: carol, payload: { ...payload, durationSeconds: 30 } })
    ).json() as {
      id: string;
    };
    await waitFor(() => processed.length >= 2);
    const ofA = processed.find((p) => p.recording.id === ra.id)!;
    const ofB = processed.find((p) => p.recording.id === rb.id)!;
    expect(ofA.job.tenantId).toBe(f.a.id);
    expect(ofA.recording).toEqual({ id: ra.id, length: 'medium', estimatedBytes: 2_400_000 });
    expect(ofB.job.tenantId).toBe(f.b.id);
    expect(ofB.recording.length).toBe('short');
  });

  it("B's side: a job naming A's recording, enqueued as B, finds nothing and changes nothing", async () => {
    const alice = await f.token(f.users.alice, f.a);
    const ra = (
      await f.call('POST', '/recordings', {
        token: alice,
        payload: { title: 'Private', durationSeconds: 10, mimeType: 'audio/ogg' },
      })
    ).json() as { id: string };
    await waitFor(() => processed.some((p) => p.recording.id === ra.id));
    const before = await f.recordingsOf(f.a);
    const count = processed.length;
    const id = await runAs(f.b.id, () => jobs.enqueue(PROCESS_RECORDING, { recordingId: ra.id }));
    const until = Date.now() + 15_000;
    while ((await jobs.state(PROCESS_RECORDING, id)) !== 'completed') {
      if (Date.now() > until) throw new Error('job did not complete');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(processed.length).toBe(count);
    expect(await f.recordingsOf(f.a)).toEqual(before);
  });

  it("a suspended tenant's processing never runs: the job ends refused", async () => {
    const carol = await f.token(f.users.carol, f.b);
    const rb = (
      await f.call('POST', '/recordings', {
        token: carol,
        payload: { title: 'Late', durationSeconds: 10, mimeType: 'audio/ogg' },
      })
    ).json() as { id: string };
    await waitFor(() => processed.some((p) => p.recording.id === rb.id));
    // a re-processing queued for B (as a retry or a re-drive would), due after the suspension
    const id = await runAs(f.b.id, () =>
      jobs.enqueue(PROCESS_RECORDING, { recordingId: rb.id }, { startAfterSeconds: 2 }),
    );
    await f.catalog.suspend(f.b.id);
    // workers may see a status up to maxStalenessMs (500 ms by default) old: past that bound
    await new Promise((r) => setTimeout(r, 600));
    const count = processed.length;
    // and once suspended, enqueue itself refuses B (the data plane's code)
    await expect(runAs(f.b.id, () => jobs.enqueue(PROCESS_RECORDING, { recordingId: rb.id }))).rejects.toMatchObject({
      code: 'TENANT_SUSPENDED',
    });
    const until = Date.now() + 15_000;
    while ((await jobs.state(PROCESS_RECORDING, id)) !== 'refused') {
      if (Date.now() > until) throw new Error('job was not refused');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(processed.length).toBe(count);
  });
});
