import type { FastifyInstance } from 'fastify';

/** A route of a Fastify server: its method and URL pattern (`/recordings/:id`). */
export interface TableRoute {
  method: string;
  url: string;
}

/**
 * Every route of a ready Fastify server, read from its own route table (`printRoutes`), so a route
 * added later is covered without editing the test. Fastify prints the radix tree one node a line:
 * `├── /recordings (GET, HEAD, POST)` with 4 columns of indentation per level, children after
 * their parent; a node's URL is its ancestors' segments joined.
 */
export function routeTable(app: FastifyInstance): TableRoute[] {
  const routes: TableRoute[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/u.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    if (match[3] === undefined) continue;
    const url = stack.join('');
    for (const method of match[3].split(', ')) routes.push({ method, url });
  }
  return routes;
}
