import { readFileSync } from 'node:fs';
import pg from 'pg';

/** Nanoseconds a process has spent on a CPU (first field of /proc/<pid>/schedstat); 0 when gone. */
export function runNs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

/**
 * CPU time of the PostgreSQL backends serving the benchmark's databases, read from /proc
 * (the server must run on this machine). Lets the report split each query's cost into client
 * and server CPU, which stays meaningful when other work shares the cores, and leaves out
 * other users of a shared server.
 */
export class ServerCpu {
  private constructor(
    private readonly admin: pg.Client,
    private readonly databases: string[],
  ) {}

  /** Undefined when the server's processes are not visible here (remote server, container). */
  static async find(adminUrl: string, databases: string[]): Promise<ServerCpu | undefined> {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      const pid = Number((await admin.query('select pg_backend_pid() as pid')).rows[0].pid);
      if (/postgres/.test(readFileSync(`/proc/${pid}/comm`, 'utf8')) && runNs(pid) > 0)
        return new ServerCpu(admin, databases);
    } catch {
      // not local
    }
    await admin.end();
    return undefined;
  }

  /** Total CPU nanoseconds so far of the backends now connected to the databases. */
  async nanoseconds(): Promise<number> {
    const { rows } = await this.admin.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = any($1)',
      [this.databases],
    );
    return rows.reduce((sum, r) => sum + runNs(r.pid), 0);
  }

  async close(): Promise<void> {
    await this.admin.end();
  }
}

/** CPU microseconds used by this process (all its threads). */
export function clientCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}
