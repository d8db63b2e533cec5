#!/usr/bin/env bash
# Runs a command with a private pgbouncer (transaction pooling) in front of a PostgreSQL server,
# so that the test suite's app-role connections go through the pooler real deployments use.
#
#   scripts/pgbouncer.sh run [--] COMMAND [ARGS...]
#
# The command sees:
#   TENANTRY_TEST_DATABASE_URL  superuser URL of the upstream server (direct, for setup)
#   TENANTRY_TEST_APP_PORT      the pgbouncer port: test/support/test-database.ts sends the
#                               app role's connections there
#
# Environment (all optional):
#   PGBOUNCER_UPSTREAM_HOST  default 127.0.0.1
#   PGBOUNCER_UPSTREAM_PORT  default 5432
#   PGBOUNCER_ADMIN_USER     superuser of the upstream server, default postgres; it must log in
#                            without a password (trust) from this host, and pgbouncer uses it
#                            to look up the per-test roles (auth_query)
#   PGBOUNCER_PORT           default: a free port on 127.0.0.1
#   PGBOUNCER_RUN_AS         system user pgbouncer runs as when started by root (it refuses
#                            root), default postgres, else nobody
#
# pgbouncer is stopped (and its folder removed) when the command ends, whatever its outcome.
set -euo pipefail

die() { echo "pgbouncer.sh: $*" >&2; exit 2; }

[ "${1:-}" = run ] || die "usage: scripts/pgbouncer.sh run [--] COMMAND [ARGS...]"
shift
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || die "no command given"
command -v pgbouncer >/dev/null || die "pgbouncer is not installed (Debian: apt-get install -y pgbouncer)"

upstream_host=${PGBOUNCER_UPSTREAM_HOST:-127.0.0.1}
upstream_port=${PGBOUNCER_UPSTREAM_PORT:-5432}
admin_user=${PGBOUNCER_ADMIN_USER:-postgres}
port=${PGBOUNCER_PORT:-$(node -e "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")}

dir=$(mktemp -d "${TMPDIR:-/tmp}/tenantry-pgbouncer.XXXXXX")
pidfile="$dir/pgbouncer.pid"
logfile="$dir/pgbouncer.log"

stop() {
  local status=$?
  if [ -s "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ "$status" -ne 0 ] && [ -s "$logfile" ]; then
    echo "---- last lines of the pgbouncer log ----" >&2
    tail -n 40 "$logfile" >&2 || true
  fi
  rm -rf "$dir"
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

# Client auth is trust (the test roles are made per test file, so no static user list can name
# them): pgbouncer looks each role up through auth_query as the admin user. Only 127.0.0.1 listens.
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$upstream_host port=$upstream_port auth_user=$admin_user

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
auth_user = $admin_user
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
reserve_pool_size = 5
ignore_startup_parameters = extra_float_digits,options
server_login_retry = 1
logfile = $logfile
pidfile = $pidfile
log_connections = 0
log_disconnections = 0
INI
printf '"%s" ""\n' "$admin_user" >"$dir/users.txt"

if [ "$(id -u)" = 0 ]; then
  run_as=${PGBOUNCER_RUN_AS:-}
  if [ -z "$run_as" ]; then
    if id postgres >/dev/null 2>&1; then run_as=postgres; else run_as=nobody; fi
  fi
  chown -R "$run_as" "$dir"
  chmod 755 "$dir"
  pgbouncer -d -u "$run_as" "$dir/pgbouncer.ini"
else
  pgbouncer -d "$dir/pgbouncer.ini"
fi

for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "pgbouncer did not start listening on 127.0.0.1:$port"
echo "pgbouncer $(pgbouncer --version | head -n 1 | awk '{print $2}') listening on 127.0.0.1:$port (transaction pooling) -> $upstream_host:$upstream_port"

export TENANTRY_TEST_DATABASE_URL="postgres://$admin_user@$upstream_host:$upstream_port/postgres"
export TENANTRY_TEST_APP_PORT="$port"
"$@"
