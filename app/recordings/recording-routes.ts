import type { FastifyInstance, FastifyRequest } from 'fastify';
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
    publishWrites = false,
    jobs,
    plugins,
  }: {
    dataPool: DataPool;
    events?: Pick<TenantEventBus, 'announce' | 'publish'>;
    /**
     * Publish `recording.created|updated|deleted` on `events` after each write commits (where the
     * database's row trigger does not: on Citus). Not in the write's transaction: a crash between
     * the two loses the event, never the write.
     */
    publishWrites?: boolean;
    jobs?: Pick<TenantJobs, 'enqueue'>;
    plugins?: Pick<PluginHost, 'emit'>;
  },
): void {
  const store = new RecordingStore(dataPool);
  // the row trigger's events, from here (ids only: subscribers fetch what they may see); a failure
  // is logged, the write stands
  const written = async (
    request: FastifyRequest,
    topic: 'recording.created' | 'recording.updated' | 'recording.deleted',
    recording: Pick<Recording, 'id' | 'ownerId'>,
  ): Promise<void> => {
    if (!publishWrites || !events) return void (await events?.announce());
    await events
      .publish(topic, { id: recording.id, ownerId: recording.ownerId })
      .catch((err: unknown) =>
        request.log.warn(
          { err: { name: (err as Error).name, code: (err as { code?: string }).code } },
          'publishing the live event failed',
        ),
      );
  };

  scope.post('/recordings', async (request, reply) => {
    const input = parseInput(newRecording, request.body, 'body');
    const recording = await store.create(realMemberOf(request).userId, input);
    // rings after the commit: Redis, or LISTEN/NOTIFY where tenants live in other databases (a
    // no-op where the database's own NOTIFY is heard: one database, see app/live)
    await written(request, 'recording.created', recording);
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
    await written(request, 'recording.updated', updated);
    return updated;
  });

  scope.delete('/recordings/:id', async (request, reply) => {
    const { id } = parseInput(idParams, request.params, 'params');
    const existing = await store.find(id);
    if (!existing) throw notFound('Recording');
    assertMayChange(memberOf(request), existing);
    if (!(await store.delete(id))) throw notFound('Recording');
    await written(request, 'recording.deleted', existing);
    return reply.code(204).send();
  });
}
