#!/bin/sh
# PostgreSQL faults and crash consistency (issue 18): the pg_faults tests of the `it` test binary.
# Runs as root (they start a private PostgreSQL cluster as the `postgres` user and fail rather
# than skip, thanks to BRINE_TEST_REQUIRE_ROOT=1). Needs the PostgreSQL server binaries
# (/usr/lib/postgresql/*/bin, Debian's postgresql package) and, for the PostgreSQL run of the
# brine-killed test, BRINE_TEST_POSTGRES_URL (the shared test server). Installs nothing.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/pg-faults.sh: must run as root (runuser -u postgres starts the private cluster)" >&2
    exit 1
fi
export BRINE_TEST_REQUIRE_ROOT=1
export BRINE_TEST_REQUIRE_POSTGRES="${BRINE_TEST_REQUIRE_POSTGRES:-1}"
# One at a time: each test already runs six clients and a database of its own.
exec cargo test -p brine --test it -- pg_faults --test-threads=1
