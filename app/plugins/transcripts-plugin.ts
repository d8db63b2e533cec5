import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { definePlugin } from 'tenantry/plugins';
import { memberOf } from '../auth/tenant-scope.js';
import { notFound } from '../http/api-error.js';
import { parseInput, text, uuid } from '../http/validation.js';
import { RecordingStore } from '../recordings/recording-store.js';
import type { PluginServices } from './plugin-services.js';

const idParams = z.object({ id: uuid() });
// every statement names the tenant in context itself, as app/recordings does: the query guard
// passes it in enforce mode, and it stays scoped where RLS is not the wall
// a plain call, not a sub-select: Citus refuses sub-selects in INSERTs and target lists (docs/citus.md)
const TENANT = 'tenantry.current_tenant_id()';
const newSegment = z.object({ text: text().trim().min(1, 'text must not be empty').max(10_000) }).strict();

/** Payload of the `transcripts.transcribe` job: ids only. */
export interface TranscribeJob {
  recordingId: string;
}

interface SegmentRow {
  id: string;
  position: number;
  text: string;
  source: 'manual' | 'auto';
  created_at: Date;
}

const segment = (r: SegmentRow) => ({
  id: r.id,
  position: r.position,
  text: r.text,
  source: r.source,
  createdAt: r.created_at.toISOString(),
});

/**
 * Recording transcripts: a `transcripts` tenant table (segments per recording), routes to read
 * and add segments, and a job that "transcribes" a new recording (writes one placeholder
 * segment; a real product would call a speech-to-text service here). Enabled per tenant.
 */
export function transcriptsPlugin(services: PluginServices) {
  const store = () => new RecordingStore(services.dataPool());
  const segments = async (recordingId: string) =>
    (
      await services.dataPool().query<SegmentRow>(
        `select id, position, text, source, created_at from transcripts
            where tenant_id = ${TENANT} and recording_id = $1 order by position, created_at`,
        [recordingId],
      )
    ).rows.map(segment);

  return definePlugin<FastifyRequest, FastifyReply>({
    name: 'transcripts',
    version: '1.0.0',
    description: 'transcripts of recordings: segments added by hand or by the transcription job',
    migrations: [
      {
        version: 1001,
        name: 'transcripts',
        sql: `create table transcripts (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  recording_id uuid not null,
  position integer not null check (position >= 0),
  text text not null check (length(text) between 1 and 10000),
  source text not null check (source in ('manual', 'auto')),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
create index transcripts_recording_idx on transcripts (tenant_id, recording_id, position);
-- the job writes its segment once per recording, however often it runs
create unique index transcripts_auto_once on transcripts (tenant_id, recording_id) where source = 'auto';
select tenantry.register_tenant_table('transcripts');`,
      },
    ],
    settings: z.object({ language: z.enum(['en', 'de', 'fr', 'es']).default('en') }),
    routes(r) {
      r.get('/recordings/:id/transcript', async (request) => {
        memberOf(request);
        const { id } = parseInput(idParams, request.params, 'params');
        if (!(await store().find(id))) throw notFound('Recording');
        return { recordingId: id, segments: await segments(id) };
      });
      r.post('/recordings/:id/transcript', async (request, reply) => {
        memberOf(request);
        const { id } = parseInput(idParams, request.params, 'params');
        const input = parseInput(newSegment, request.body, 'body');
        if (!(await store().find(id))) throw notFound('Recording');
        const { rows } = await services.dataPool().query<SegmentRow>(
          `insert into transcripts (tenant_id, recording_id, position, text, source)
           select ${TENANT}, $1, coalesce(max(position) + 1, 0), $2, 'manual'
             from transcripts where tenant_id = ${TENANT} and recording_id = $1
           returning id, position, text, source, created_at`,
          [id, input.text],
        );
        return reply.code(201).send(segment(rows[0]!));
      });
    },
    events: {
      // a new recording is transcribed in the background, as its tenant
      'recording.created': async (payload, ctx) => {
        await ctx.enqueue<TranscribeJob>('transcribe', { recordingId: (payload as TranscribeJob).recordingId });
      },
    },
    jobs: {
      transcribe: {
        handler: async ({ recordingId }: TranscribeJob) => {
          const recording = await store().find(recordingId);
          if (!recording) return; // deleted meanwhile: nothing to do
          const language = (await services.setting?.('transcripts.language')) ?? 'en';
          await services.dataPool().query(
            `insert into transcripts (tenant_id, recording_id, position, text, source)
             select ${TENANT}, $1, coalesce(max(position) + 1, 0), $2, 'auto'
               from transcripts where tenant_id = ${TENANT} and recording_id = $1
             on conflict (tenant_id, recording_id) where source = 'auto' do nothing`,
            [recordingId, `[automatic transcript (${String(language)}) of "${recording.title}": placeholder]`],
          );
        },
        options: { retryLimit: 3, retryDelaySeconds: 5 },
      },
    },
  });
}
