import { afterAll, describe, expect, it } from 'vitest';
import {
  gone,
  postmasterPid,
  serverPid,
  startServer,
  step,
  tearDownProject,
  tempProject,
  type ServerProcess,
} from './support/reference-server.js';

// A process manager stops `npm start` by signalling npm itself: npm passes the signal on to the
// server (the start script execs node, so no shell stands in between), which closes everything
// and prints the Stopped line; no postmaster is left running on the data folder.
const project = await tempProject();
let server: ServerProcess | undefined;

afterAll(() => tearDownProject(project, server), 60_000);

describe('npm start, stopped by a signal to npm', () => {
  {
    const signal = 'SIGTERM';
    it('SIGTERM: the server and PostgreSQL stop cleanly, with the Stopped line', async () => {
      server = await startServer({ dir: project.dir, via: 'npm' });
      step(`started through npm, sending ${signal}`);
      const node = await serverPid(server);
      expect(node).not.toBe(server.child.pid);
      const postmaster = (await postmasterPid(project.dir))!;
      expect(postmaster).toBeGreaterThan(0);
      server.child.kill(signal); // npm's pid, as a process manager would
      const exit = await Promise.race([
        server.exited,
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000)),
      ]);
      expect(exit).not.toBe('timeout');
      expect(server.output()).toContain('Stopped: HTTP server, pools and database closed.');
      expect(await gone(node, 5000)).toBe(true);
      expect(await gone(postmaster, 5000)).toBe(true);
      expect(await postmasterPid(project.dir)).toBeUndefined();
      server = undefined;
    }, 180_000);
  }

  it('SIGINT right after the postmaster died: not held by it (bounded), the Stopped line, no postmaster left', async () => {
    server = await startServer({ dir: project.dir, via: 'npm' });
    const postmaster = (await postmasterPid(project.dir))!;
    process.kill(postmaster, 'SIGKILL'); // the server starts restarting it at once
    await new Promise((resolve) => setTimeout(resolve, 500));
    server.child.kill('SIGINT'); // npm's pid, as Ctrl+C or a process manager would
    const exit = await Promise.race([
      server.exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000)),
    ]);
    expect(exit).not.toBe('timeout');
    expect(server.output()).toContain('Stopped: HTTP server, pools and database closed.');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const left = await postmasterPid(project.dir);
    if (left !== undefined) expect(await gone(left, 5000)).toBe(true);
    server = undefined;
  }, 180_000);
});
