import type { LocalDatabaseOrigin } from 'tenantry/embedded';
import { DEMO_PASSWORD, DEMO_STAFF, DEMO_USERS } from './demo-seed.js';

/** What `npm start` found and did, for the banner. */
export interface BannerFacts {
  host: string;
  port: number;
  baseDomain: string;
  /** The project folder (TENANTRY_DIR, default .tenantry). */
  dataFolder: string;
  /** Where the database is: started now, another server's reused, or DATABASE_URL's. */
  origin: LocalDatabaseOrigin;
  applied: string[];
  seeded: boolean;
  placed: string[];
  /** Where each tenant lives. */
  where: string[];
  locations: number;
  clusters: string[];
  guardMode: string;
  liveKind: string;
  /** Where background jobs run (the jobs line). */
  jobs?: string;
  /** What the server observes and bounds (the observe lines); absent: not said. */
  observe?: ObserveFacts;
  /** Demo tokens minted just now (absent when the demo users could not sign in). */
  tokens?: { acme: string; globex: string; initech?: string };
  /** One of globex's recordings, for the cross-tenant try. */
  globexRecording?: string;
  /** TENANTRY_CITUS=1: DATABASE_URL is a Citus coordinator with this many workers. */
  citus?: { workers: number };
}

/** What is on for observing and bounding tenants (each from its variable). */
export interface ObserveFacts {
  /** GET /metrics is served (TENANTRY_METRICS_TOKEN set). */
  metrics: boolean;
  /** Spans are reported (TENANTRY_TRACING=on, with an SDK registered). */
  tracing: boolean;
  /** Rate limits by plan and sign-in throttles (TENANTRY_RATE_LIMITS). */
  rateLimits: boolean;
  /** Activity published for `tenantry tenants top` (TENANTRY_ACTIVITY), every so many seconds. */
  activitySeconds?: number;
  /** Per-tenant database limits by plan (TENANTRY_DB_LIMITS). */
  dbLimits: boolean;
  /** Fair checkout of connections (TENANTRY_FAIR_CHECKOUT). */
  fairCheckout: boolean;
  /** Fastify's trustProxy as configured (TENANTRY_TRUST_PROXY). */
  trustProxy?: boolean | number | string;
}

/** The observe lines of the banner: what is on, and the variable that changes it. */
export function observeLines(o: ObserveFacts): string[] {
  const onOff = (on: boolean) => (on ? 'on' : 'off');
  return [
    `  metrics    ${o.metrics ? 'GET /metrics (bearer TENANTRY_METRICS_TOKEN)' : 'off (set TENANTRY_METRICS_TOKEN to serve GET /metrics)'}; ` +
      `tracing ${o.tracing ? 'on' : 'off'} (TENANTRY_TRACING)`,
    `  limits     rate limits ${onOff(o.rateLimits)} (TENANTRY_RATE_LIMITS; api, export, move by plan; sign-in, invitations, sign-up throttled); ` +
      `client address ${o.trustProxy ? `from X-Forwarded-For of ${o.trustProxy === true ? 'any proxy' : `trusted proxies ${String(o.trustProxy)}`}` : 'of the socket'} (TENANTRY_TRUST_PROXY)`,
    `  tenants    ${o.activitySeconds ? `activity published every ${o.activitySeconds} s: npm run tenantry -- tenants top` : 'activity off (TENANTRY_ACTIVITY)'}; ` +
      `database limits by plan ${onOff(o.dbLimits)}; fair checkout ${onOff(o.fairCheckout)}`,
  ];
}

/** The database line: what the server actually uses (never a password). */
export function databaseLine(origin: LocalDatabaseOrigin, dataFolder: string): string {
  switch (origin.kind) {
    case 'embedded': {
      const recovered = origin.recovered.orphanPid
        ? `; recovered: a server of ${dataFolder}/pgdata left running by a killed process (pid ${origin.recovered.orphanPid}) was stopped and started anew`
        : origin.recovered.staleLock
          ? '; recovered: a stale lock file of a killed server was removed'
          : '';
      return `embedded PostgreSQL on port ${origin.port}, data in ${dataFolder}/pgdata${recovered}`;
    }
    case 'reused':
      return `the embedded PostgreSQL of ${dataFolder}/pgdata on port ${origin.port}, started by another process (pid ${origin.ownerPid}), which stops it`;
    case 'url':
      return `DATABASE_URL: ${origin.host}:${origin.port}/${origin.database}`;
  }
}

// curl prints the body as it came: a JSON body has no newline at its end, and the shell prompt
// would follow it on the same line
const CURL = `curl -s -w '\\n'`;

/** The banner `npm start` prints once it listens: where, what, who, and commands that paste as they are. */
export function startBanner(facts: BannerFacts): string {
  const { host, port, baseDomain, dataFolder, tokens, globexRecording } = facts;
  const base = `http://${host}:${port}`;
  // reads one field of the JSON a command answers, with the node that runs this server
  const field = (name: string) => `node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).${name}'`;
  const users = DEMO_USERS.map(
    (u) => `  ${u.email.padEnd(24)} ${u.memberships.map(([t, r]) => `${t} (${r})`).join(', ')}`,
  ).join('\n');
  const json = `-H 'content-type: application/json'`;
  const lines = [
    '',
    `Tenantry reference server: ${base}`,
    `  database   ${databaseLine(facts.origin, dataFolder)}`,
    `  migrations ${facts.applied.length ? `applied ${facts.applied.join(', ')}` : 'up to date'}`,
    `  demo data  ${facts.seeded ? 'seeded now' : 'already present (kept, not re-seeded)'}`,
    ...(facts.citus
      ? [
          `  citus      TENANTRY_CITUS=1: the tables distributed by tenant_id over ${facts.citus.workers} workers; ${facts.where.join('; ')}`,
          '             off in this mode: schema/database tiers, demo placements and moves, sign-up, TENANTRY_CLUSTERS,',
          '             console moves and exports, support reads (501 NOT_ON_CITUS), per-row write metering of recordings,',
          '             the activity tag, database limits, fair checkout;',
          '             live recording events are published by the app after each write',
        ]
      : [
          `  tiers      ${facts.where.join('; ')}`,
          `             ${facts.placed.length ? `moved online just now: ${facts.placed.join(', ')}` : 'placements kept as they are'}; clusters: ${facts.clusters.join(', ')}; ${facts.locations} data locations migrated`,
        ]),
    `  guard      ${facts.guardMode} (TENANTRY_GUARD=off|report|enforce)`,
    ...(facts.jobs
      ? [
          `  jobs       ${facts.jobs}: a new recording is processed in the background (recording.processed on GET /events)`,
        ]
      : []),
    ...(facts.observe ? observeLines(facts.observe) : []),
    '',
    `Routes (docs/reference-server.md): ${facts.citus ? '' : 'POST /sign-up, '}POST /auth/sign-in, /auth/sign-out, GET /me, recordings CRUD, GET /events (SSE, ${facts.liveKind}),`,
    `        members, invitations, API keys, domains, GET /audit-log, staff sign-in / access grants / support reads,`,
    `        GET /usage and /usage/events (metering), GET/PUT/DELETE /settings (per-tenant settings and history)${facts.observe?.metrics ? ', GET /metrics (Prometheus)' : ''}`,
    `  tenants by host: http://<slug>.${baseDomain}:${port} (must agree with the token), verified custom domains`,
    `Operator console (staff, docs/console.md): ${base}/console`,
    '',
    `Demo users (password for all: ${DEMO_PASSWORD}):`,
    users,
    `  ${DEMO_STAFF.email.padEnd(24)} staff: no tenant; acts as one only with a reason, audited`,
    '',
    'Sign in (answers { token }):',
    `  ${CURL} -X POST ${base}/auth/sign-in ${json} -d '{"email":"sam@consultant.example","password":"${DEMO_PASSWORD}","tenant":"globex"}'`,
    '',
  ];
  if (tokens) {
    lines.push(
      'Tokens minted just now (valid 1 hour):',
      `  export ACME_TOKEN=${tokens.acme}`,
      `  export GLOBEX_TOKEN=${tokens.globex}`,
      ...(tokens.initech ? [`  export INITECH_TOKEN=${tokens.initech}`] : []),
      '',
      `  ${CURL} ${base}/me -H "authorization: Bearer $ACME_TOKEN"`,
      `  ${CURL} "${base}/recordings?limit=2" -H "authorization: Bearer $ACME_TOKEN"`,
      `  ${CURL} "${base}/recordings" -H "authorization: Bearer $GLOBEX_TOKEN"    # served from ${facts.citus ? "globex's shard" : 'schema t_globex'}`,
      `  ${CURL} "${base}/recordings" -H "authorization: Bearer $INITECH_TOKEN"   # served from ${facts.citus ? "initech's shard" : 'database tenant_initech'}`,
      `  ${CURL} -X POST ${base}/recordings -H "authorization: Bearer $GLOBEX_TOKEN" ${json} -d '{"title":"Standup","durationSeconds":300,"mimeType":"audio/ogg"}'`,
      '  # live events of a tenant (Server-Sent Events): paste in another terminal (the token is spelt out), then write as globex',
      `  curl -N ${base}/events -H "authorization: Bearer ${tokens.globex}"`,
      ...(globexRecording
        ? [
            "  # one of globex's recordings: globex reads it, acme gets 404, exactly as for an id that does not exist",
            `  ${CURL} ${base}/recordings/${globexRecording} -H "authorization: Bearer $GLOBEX_TOKEN"`,
            `  ${CURL} ${base}/recordings/${globexRecording} -H "authorization: Bearer $ACME_TOKEN"`,
          ]
        : []),
      "  # the host names a tenant too: a token of acme on globex's host is refused (400 TENANT_CONFLICT)",
      `  ${CURL} http://globex.${baseDomain}:${port}/me -H "authorization: Bearer $ACME_TOKEN"`,
      '  # an API key of acme (shown once), then use it instead of a token',
      `  export ACME_KEY=$(curl -s -X POST ${base}/api-keys -H "authorization: Bearer $ACME_TOKEN" ${json} -d '{"name":"uploader"}' | ${field('key')})`,
      `  ${CURL} ${base}/recordings -H "x-api-key: $ACME_KEY"`,
      "  # staff: sign in, open an audited grant on acme with a reason, act as acme, then read acme's audit log",
      `  export STAFF_TOKEN=$(curl -s -X POST ${base}/staff/sign-in ${json} -d '{"email":"${DEMO_STAFF.email}","password":"${DEMO_PASSWORD}"}' | ${field('token')})`,
      `  ${CURL} -X POST ${base}/staff/access -H "authorization: Bearer $STAFF_TOKEN" ${json} -d '{"tenant":"acme","reason":"Ticket 4711: uploads missing","minutes":15}'`,
      `  ${CURL} ${base}/recordings -H "authorization: Bearer $STAFF_TOKEN" -H "x-tenant: acme"`,
      `  ${CURL} ${base}/audit-log -H "authorization: Bearer $ACME_TOKEN"`,
      '',
    );
  } else {
    lines.push('(The demo users could not sign in: the demo data was changed. Sign in with your own users.)', '');
  }
  lines.push(
    facts.origin.kind === 'embedded'
      ? `Ctrl+C stops the server and the embedded PostgreSQL (data stays in ${dataFolder}/).`
      : facts.origin.kind === 'reused'
        ? `Ctrl+C stops this server; the embedded PostgreSQL keeps running for process ${facts.origin.ownerPid}.`
        : 'Ctrl+C stops the server.',
    '',
  );
  return lines.join('\n');
}

/**
 * What `npm run worker` prints: every job it runs (the server's and the plugins'), as defined on
 * its TenantJobs, and the database it works on.
 */
export function workerBanner(jobNames: readonly string[], where: string): string {
  const jobs = jobNames.length ? jobNames.join(', ') : 'none defined';
  return `\nTenantry worker: running background jobs (${jobs}) against ${where}; no HTTP. Ctrl+C stops it.\n`;
}
