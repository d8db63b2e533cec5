import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/embedded/embedded-postgres.js';

let server: EmbeddedServer | undefined;

/** One real PostgreSQL for the whole run: embedded unless TENANTRY_TEST_DATABASE_URL names a server. */
export async function setup(project: TestProject): Promise<void> {
  let adminUrl = process.env.TENANTRY_TEST_DATABASE_URL;
  if (!adminUrl) {
    server = await startEmbeddedPostgres({ settings: { max_connections: '400' } });
    adminUrl = server.adminUrl;
  }
  project.provide('adminUrl', adminUrl);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
  }
}
