import type { JobContext, TenantJobs } from 'tenantry/jobs';
import type { TenantEventBus } from 'tenantry/live';
import { RecordingStore, type DataPool } from '../recordings/recording-store.js';

/** The reference server's one real job: processing a recording just uploaded. */
export const PROCESS_RECORDING = 'recording.process';

/** Payload of {@link PROCESS_RECORDING}: ids only, never the tenant's data. */
export interface ProcessRecording {
  recordingId: string;
}

/** What processing found, published to the tenant's live channel as `recording.processed`. */
export interface ProcessedRecording {
  id: string;
  /** short (< 1 min), medium (< 20 min) or long. */
  length: 'short' | 'medium' | 'long';
  /** Rough size of the audio at 64 kbit/s, in bytes. */
  estimatedBytes: number;
}

/**
 * Defines `recording.process`: runs as the recording's tenant (tenantry/jobs restores it with
 * `runAs`), reads the recording through the data pool (its placement, whatever the tier), and
 * publishes what it found on the tenant's live channel (`GET /events`). A recording deleted in
 * the meantime is nothing to do. Never runs for a suspended, deleted or missing tenant.
 */
export function defineRecordingJobs(
  jobs: TenantJobs,
  deps: {
    dataPool: DataPool;
    events?: Pick<TenantEventBus, 'publish'>;
    onProcessed?: (r: ProcessedRecording, job: JobContext) => void;
  },
): void {
  const store = new RecordingStore(deps.dataPool);
  jobs.define<ProcessRecording>(
    PROCESS_RECORDING,
    async ({ recordingId }, job) => {
      const recording = await store.find(recordingId);
      if (!recording) return;
      const seconds = recording.durationSeconds;
      const processed: ProcessedRecording = {
        id: recording.id,
        length: seconds < 60 ? 'short' : seconds < 1200 ? 'medium' : 'long',
        estimatedBytes: seconds * 8000,
      };
      await deps.events?.publish('recording.processed', { ...processed });
      deps.onProcessed?.(processed, job);
    },
    { retryLimit: 3, retryDelaySeconds: 5 },
  );
}
