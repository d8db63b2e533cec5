let starting = false;

/**
 * Starts one of Tenantry's own spans through `start`, marked so that {@link TenantSpanProcessor}
 * leaves it alone: the SDK calls processors synchronously inside `startSpan`, so a flag set around
 * the call is exact.
 */
export function startOwnSpan<T>(start: () => T): T {
  starting = true;
  try {
    return start();
  } finally {
    starting = false;
  }
}

/** True while {@link startOwnSpan} is starting a span. */
export function startingOwnSpan(): boolean {
  return starting;
}
