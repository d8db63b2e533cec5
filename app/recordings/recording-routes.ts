import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { memberOf, realMemberOf } from '../auth/tenant-scope.js';
import type { Member } from '../auth/member-context.js';
import { ApiError, notFound } from '../http/api-error.js';
import { cursor } from '../http/keyset-cursor.js';
import { int, INT4_MAX, parseInput, queryInt, text, uuid } from '../http/validation.js';
import { RecordingStore, type DataPool, type Recording } from './recording-store.js';
import type { TenantEventBus } from 'tenantry/live';
import type { TenantJobs } from 'tenantry/jobs';
import type { PluginHost } from 'tenantry/plugins';
import { PROCESS_RECORDING, type ProcessRecording } from '../jobs/recording-jobs.js';

const idParams = z.object({ id: uuid() });

const recordingFields = {
  title: text().trim().min(1, 'title must not be empty').max(200),
  durationSeconds: int(0, INT4_MAX),
  mimeType: text()
    .trim()
    .toLowerCase()
    .regex(/^audio\/[a-z0-9][a-z0-9.+-]{0,62}$/, 'mimeType must be an audio/* media type'),
};
const newRecording = z.object(recordingFields).strict();
const recordingChanges = z
  .object(recordingFields)
  .partial()
  .strict()
  .refine((changes) => Object.keys(changes).length > 0, 'send at least one of title, durationSeconds, mimeType');

const listQuery = z
  .object({
    limit: queryInt(1, 100).default(20),
    cursor: cursor().optional(),
  })
  .strict();

/** Only the recording's owner, or an owner/admin of the tenant, may change or delete it. */
function assertMayChange(member: Member, recording: Recording): void {
  if (recording.ownerId !== member.userId && member.role === 'member') {
    throw new ApiError(403, 'FORBIDDEN', "Only the recording's owner or a tenant admin can change it");
  }
}

/**
 * Recordings CRUD. Registered inside the tenant scope: every handler runs as the caller's
 * tenant, so another tenant's recording answers 404 exactly like one that does not exist.
 */
export function recordingRoutes(
  scope: FastifyInstance,
  {
    dataPool,
    events,
    jobs,
    plugins,
  }: {
    dataPool: DataPool;
    events?: Pick<TenantEventBus, 'announce'>;
    jobs?: Pick<TenantJobs, 'enqueue'>;
    plugins?: Pick<PluginHost, 'emit'>;
  },
): void {
  const store = new RecordingStore(dataPool);

  scope.post('/recordings', async (request, reply) => {
    const input = parseInput(newRecording, request.body, 'body');
    const recording = await store.create(realMemberOf(request).userId, input);
    // rings after the commit: Redis, or LISTEN/NOTIFY where tenants live in other databases (a
    // no-op where the database's own NOTIFY is heard: one database, see app/live)
    await events?.announce();
    // processing runs in the background as this tenant (tenantry/jobs captures it from runAs).
    // The recording is stored: a queue outage must not turn its creation into an error
    if (jobs)
      await jobs
        // eslint-disable-next-line tenantry/job-needs-tenant -- the tenant scope runs this handler inside runAs; tenantry/jobs seals that tenant and refuses (JOB_TENANT_MISSING) without one
        .enqueue<ProcessRecording>(PROCESS_RECORDING, { recordingId: recording.id })
        .catch((err: unknown) =>
          request.log.warn(
            { err: { name: (err as Error).name, code: (err as { code?: string }).code } },
            'enqueue failed',
          ),
        );
    // the tenant's plugins hear it (transcripts, webhooks): only those enabled for this tenant run.
    // Like the job above, the recording is stored: a plugin's failure is logged, not answered
    if (plugins)
      await plugins
        .emit('recording.created', { recordingId: recording.id })
        .catch((err: unknown) =>
          request.log.warn(
            { err: { name: (err as Error).name, code: (err as { code?: string }).code } },
            'plugin event failed',
          ),
        );
    return reply.code(201).header('location', `/recordings/${recording.id}`).send(recording);
  });

  scope.get('/recordings', { config: { query: listQuery } }, async (request) => {
    const { limit, cursor } = parseInput(listQuery, request.query, 'query');
    return store.list(limit, cursor);
  });

  scope.get('/recordings/:id', async (request) => {
    const { id } = parseInput(idParams, request.params, 'params');
    const recording = await store.find(id);
    if (!recording) throw notFound('Recording');
    return recording;
  });

  scope.patch('/recordings/:id', async (request) => {
    const { id } = parseInput(idParams, request.params, 'params');
    const changes = parseInput(recordingChanges, request.body, 'body');
    const existing = await store.find(id);
    if (!existing) throw notFound('Recording');
    assertMayChange(memberOf(request), existing);
    const updated = await store.update(id, changes);
    if (!updated) throw notFound('Recording');
    await events?.announce();
    return updated;
  });

  scope.delete('/recordings/:id', async (request, reply) => {
    const { id } = parseInput(idParams, request.params, 'params');
    const existing = await store.find(id);
    if (!existing) throw notFound('Recording');
    assertMayChange(memberOf(request), existing);
    if (!(await store.delete(id))) throw notFound('Recording');
    await events?.announce();
    return reply.code(204).send();
  });
}
