#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the catalogue tests and print its SQLAlchemy URL.
# Usage: url=$(scripts/scratch-postgres.sh DIR) ; stop with: pg_ctl -D DIR/data stop
# Installs Debian's postgresql when missing (needs root). Exits non-zero if anything fails.
set -euo pipefail
dir=${1:?usage: scratch-postgres.sh DIR}
port=${PGPORT_SCRATCH:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
mkdir -p "$dir/data"
chown -R postgres "$dir"
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
as_pg "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
as_pg "$bin/pg_ctl -D $dir/data -w -l $dir/log -o '-p $port -k $dir -c listen_addresses=127.0.0.1' start" >/dev/null
as_pg "$bin/createdb -h 127.0.0.1 -p $port -U postgres synthmed_test"
echo "postgresql+psycopg://postgres@127.0.0.1:$port/synthmed_test"
