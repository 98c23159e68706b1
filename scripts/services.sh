#!/usr/bin/env bash
# Starts the services the tests need and prints the environment to use them:
#   eval "$(scripts/services.sh)"
# PostgreSQL 15 on 127.0.0.1:5432 with a password for the postgres role and a test database.
# Idempotent: safe on a fresh machine and on one where it already runs. Needs root (apt, su).
set -euo pipefail
PASSWORD=${TAILOR_PG_PASSWORD:-tailor}
log() { echo "services: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "installing PostgreSQL"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$VERSION main$"; then
  log "creating cluster $VERSION/main"
  pg_createcluster "$VERSION" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$VERSION" '$1==v && $2=="main" {print $4}' | grep -q online; then
  log "starting PostgreSQL $VERSION"
  pg_ctlcluster "$VERSION" main start >&2
fi
for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL did not come up"; exit 1; }
psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -qtAX -c \"$1\"" ; }
psql_admin "ALTER USER postgres PASSWORD '$PASSWORD'" >/dev/null
# Databases the previous run's tests created.
for db in $(psql_admin "SELECT datname FROM pg_database WHERE datname LIKE 'tailor_test_%'"); do
  psql_admin "DROP DATABASE IF EXISTS $db" >/dev/null || true
done
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'tailor_test'")" != "1" ]; then
  psql_admin "CREATE DATABASE tailor_test" >/dev/null
fi
echo "export TAILOR_TEST_POSTGRES_URL=postgres://postgres:$PASSWORD@127.0.0.1:5432/tailor_test"
