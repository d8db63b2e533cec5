import { randomUUID } from 'node:crypto';
import { ConfigurationError } from '../errors/tenantry-error.js';
import type { AttemptActor, AttemptResult } from './attempt-result.js';
import { neighbourValues } from './guessable-ids.js';
import type { IsolationContext, IsolationTenant } from './isolation-context.js';
import { diffSnapshots, snapshotRows, type RowSnapshot } from './row-snapshot.js';
import { describeStatus, statusMatches, type ResolvedRoute, type StatusExpectation } from './route-spec.js';
import type { TableProbe } from './table-probe.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Sends one route's requests as `actor` and reports every leak: an unexpected status, a value
 * of tenant A (its tenant id, a seeded row's id) in the answer, a cross-tenant 404 that does not
 * look exactly like the 404 of an id that does not exist, or a change to another tenant's rows.
 * For `tenant-a` (the control) only the status is checked.
 */
export async function runRouteAttempt<User>(
  route: ResolvedRoute,
  actor: AttemptActor,
  context: IsolationContext<User>,
  probes: ReadonlyMap<string, TableProbe>,
): Promise<AttemptResult> {
  const http = context.http;
  if (!http)
    throw new ConfigurationError('the suite has routes: pass `http: { driver, credentials }` in the isolation context');
  const probe = route.table ? probes.get(route.table.name) : undefined;
  const party: IsolationTenant<User> | undefined =
    actor === 'tenant-a' ? context.tenantA : actor === 'tenant-b' ? context.tenantB : undefined;
  const headers = party ? { ...(await http.credentials(party)) } : {};
  const expected: StatusExpectation =
    actor === 'tenant-a'
      ? (route.control as StatusExpectation)
      : actor === 'tenant-b'
        ? route.crossTenant
        : route.noTenant;
  const send = (id: string | undefined) =>
    http.driver.request({
      method: route.method,
      path: id === undefined ? route.spec.path : route.spec.path.replace(route.param!, encodeURIComponent(id)),
      headers,
      ...(route.spec.body === undefined ? {} : { body: route.spec.body }),
    });
  const leaks: string[] = [];

  if (actor === 'tenant-a') {
    let id: string | undefined;
    if (route.hasId) {
      // a write may change or delete the row: give it one of its own
      const key =
        route.method === 'GET' || route.method === 'HEAD' ? probe!.keysA[0]! : await probe!.seedRow(context.tenantA);
      id = key[route.idColumn!];
    }
    const res = await send(id);
    if (!statusMatches(expected, res.status)) {
      leaks.push(
        `${route.name} as tenant A (control): ${res.status} instead of ${describeStatus(expected)}: the route or its spec is wrong, so the attacks prove nothing`,
      );
    }
    return { attempt: route.name, actor, tries: 1, leaks };
  }

  const actorTenant = actor === 'tenant-b' ? context.tenantB.tenant.id : undefined;
  const targets: Array<{ id: string | undefined; what: string }> = [];
  if (route.hasId) {
    const keysA = probe!.keysA.map((k) => k[route.idColumn!]!);
    keysA.forEach((id, i) => targets.push({ id, what: `A's row ${i + 1}` }));
    const own = new Set(probe!.keysB.map((k) => k[route.idColumn!]!));
    const guessed = new Set<string>();
    for (const id of [...keysA, ...own])
      for (const n of neighbourValues(id)) if (!own.has(n) && !keysA.includes(n)) guessed.add(n);
    for (const id of guessed) targets.push({ id, what: 'a guessed id' });
  } else targets.push({ id: undefined, what: 'no id' });

  // what must never show up in the intruder's answers: long values only (a short integer id appears everywhere)
  const secrets = new Set<string>([context.tenantA.tenant.id]);
  for (const p of probes.values())
    for (const key of p.keysA) for (const v of Object.values(key)) if (UUID.test(v) || v.length >= 12) secrets.add(v);

  const tables = [...probes.values()].map((p) => p.table);
  const snapshot = () => Promise.all(tables.map((t) => snapshotRows(context.privileged, t, actorTenant)));
  const before: RowSnapshot[] = await snapshot();
  const missing =
    actor === 'tenant-b' && route.hasId && route.sameAsMissing && targets.every((t) => UUID.test(t.id!))
      ? await send(randomUUID())
      : undefined;
  for (const target of targets) {
    const res = await send(target.id);
    const label = `${route.name} (${target.what})`;
    if (!statusMatches(expected, res.status))
      leaks.push(`${label}: ${res.status} instead of ${describeStatus(expected)}`);
    // the id the intruder sent tells it nothing when echoed back ("recording <id> not found")
    const shown = [...secrets].filter(
      (s) => s !== target.id && res.body.toLowerCase().includes(s.toLowerCase()),
    ).length;
    if (shown > 0) leaks.push(`${label}: the answer contains ${shown} value(s) of tenant A (its tenant id or row ids)`);
    if (missing && target.id !== undefined && statusMatches(expected, res.status)) {
      if (
        res.status !== missing.status ||
        res.body.replace(UUID_IN_TEXT, ':id') !== missing.body.replace(UUID_IN_TEXT, ':id')
      ) {
        leaks.push(
          `${label}: the answer differs from the one for an id that does not exist (${res.status} vs ${missing.status}): it tells the row exists`,
        );
      }
    }
  }
  const after = await snapshot();
  tables.forEach((t, i) => {
    const change = diffSnapshots(t, before[i]!, after[i]!);
    if (change) leaks.push(`${route.name}: ${change}`);
  });
  return { attempt: route.name, actor, tries: targets.length, leaks };
}

const UUID_IN_TEXT = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
