#!/usr/bin/env bash
# Flow store write benchmark: one collection pass of N changed flows written to PostgreSQL and to SQLite, interleaved.
# Starts a private PostgreSQL cluster (initdb + pg_ctl of Debian's server package, run as the postgres user, Unix socket
# only, PostgreSQL's default durability: fsync on, synchronous commit), stops and removes it at the end.
#
#   benchmarks/flowstore.sh [--flows 100000] [--passes 5]
#
# FLOWSTORE_STATEMENTS=1 loads pg_stat_statements and prints, at the end, what each statement of the PostgreSQL writes
# cost the server (time, WAL, temporary blocks per call): where the server's CPU goes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "flowstore: the PostgreSQL server is not installed (apt-get install postgresql)" >&2; exit 1; }
dir="$(mktemp -d /tmp/vrm-flowstore-bench.XXXXXX)"
password="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cleanup() {
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  [ -n "${FLOWSTORE_KEEP_LOG:-}" ] && cp "$dir/server.log" "$FLOWSTORE_KEEP_LOG"
  rm -rf "$dir"
}
trap cleanup EXIT
printf '%s\n' "$password" > "$dir/pwfile"
chown -R postgres: "$dir"
chmod 700 "$dir"
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U vrmirror --pwfile "$dir/pwfile" --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
statements=""
[ -n "${FLOWSTORE_STATEMENTS:-}" ] && statements="-c shared_preload_libraries=pg_stat_statements"
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-c listen_addresses='' -c unix_socket_directories=$dir $statements ${FLOWSTORE_PG_OPTIONS:-}" start >/dev/null
export PGPASSWORD="$password"
psql -h "$dir" -U vrmirror -d postgres -qXc "CREATE DATABASE flows" >/dev/null
[ -n "$statements" ] && psql -h "$dir" -U vrmirror -d flows -qXc "CREATE EXTENSION pg_stat_statements" >/dev/null
dotnet build "$root/benchmarks/Mirroring.Benchmarks/Mirroring.Benchmarks.csproj" -c Release --nologo -v quiet -clp:ErrorsOnly >/dev/null
dotnet "$root/benchmarks/Mirroring.Benchmarks/bin/Release/net10.0/Mirroring.Benchmarks.dll" flowstore \
  --db "postgresql://vrmirror@$(python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=''))" "$dir")/flows" \
  --db "$dir/flows.db" --server-pid-file "$dir/data/postmaster.pid" "$@"
if [ -n "$statements" ]; then
  psql -h "$dir" -U vrmirror -d flows -XPfooter=off -c "SELECT calls, round(total_exec_time / calls) AS ms_per_call,
      pg_size_pretty(round(wal_bytes / calls)) AS wal_per_call, temp_blks_written / calls AS temp_blocks_per_call,
      left(regexp_replace(query, '\s+', ' ', 'g'), 80) AS statement
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'flows') AND total_exec_time > 10
    ORDER BY total_exec_time DESC LIMIT 10"
fi
