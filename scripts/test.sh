#!/usr/bin/env bash
# Runs every Atrium test: unit, route, store conformance on SQLite and PostgreSQL, and the
# end-to-end tests that start the real `atrium` binary.
#
# PostgreSQL: set ATRIUM_TEST_POSTGRES_URL to a server where the user may CREATE DATABASE, or
# have PostgreSQL's binaries installed (apt-get install postgresql) and this script starts a
# private throwaway server on a free loopback port. Under CI=true a missing PostgreSQL fails.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -z "${ATRIUM_TEST_POSTGRES_URL:-}" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$pg_bin" ]; then
    pg_dir=$(mktemp -d /tmp/atrium-pg.XXXXXX)
    chmod 755 "$pg_dir"
    [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U atrium --auth=trust >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
      -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    export ATRIUM_TEST_POSTGRES_URL="postgres://atrium@127.0.0.1:$port/postgres"
    echo "test PostgreSQL: $ATRIUM_TEST_POSTGRES_URL"
  elif [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL is required under CI: apt-get install postgresql" >&2
    exit 1
  else
    echo "PostgreSQL not found: the PostgreSQL store tests will be skipped (apt-get install postgresql to run them)" >&2
  fi
fi

swift build --build-tests
swift_status=0
swift test --skip-build "$@" || swift_status=$?

# Browser tests: headless Chromium (WebDriver) against the binary just built: the admin panel and
# user pages (simulated backend) and the real JupyterLab through the hub (local backend). They run
# even when `swift test` failed, and both results are reported. Skipped when arguments narrow the
# Swift tests; without chromium, chromium-driver, selenium or JupyterLab they are skipped with a
# note, except under CI=true, where that fails.
browser_failed=()
if [ "$#" -eq 0 ]; then
  for test in tests/browser/test_*.py; do
    echo "== browser: $test"
    python3 "$test" || browser_failed+=("$test")
  done
fi

# JupyterHub compatibility: JupyterHub 6.1.1's own REST-API tests ported to drive the binary
# (tests/compat), the unmodified hub-stress-test.py and jupyterhub-idle-culler, on SQLite and
# PostgreSQL, in the Python environment scripts/install-test-deps.sh makes for them.
compat_status=skipped
if [ "$#" -eq 0 ]; then
  compat_env=$(scripts/compat-env.sh)
  if [ -x "$compat_env/bin/python" ]; then
    echo "== compatibility: tests/compat"
    compat_status=passed
    "$compat_env/bin/python" -m pytest -q -p no:cacheprovider tests/compat || compat_status=FAILED
  elif [ "${CI:-}" = "true" ]; then
    echo "compatibility tests: $compat_env is missing (scripts/install-test-deps.sh makes it)" >&2
    compat_status=FAILED
  else
    echo "compatibility tests skipped: run scripts/install-test-deps.sh to make $compat_env" >&2
  fi
fi

echo "== summary"
if [ "$swift_status" -eq 0 ]; then echo "swift test: passed"; else echo "swift test: FAILED (exit $swift_status)"; fi
if [ "$#" -eq 0 ]; then
  if [ "${#browser_failed[@]}" -eq 0 ]; then echo "browser tests: passed"; else echo "browser tests: FAILED: ${browser_failed[*]}"; fi
  echo "compatibility tests: $compat_status"
fi
[ "$swift_status" -eq 0 ] && [ "${#browser_failed[@]}" -eq 0 ] && [ "$compat_status" != FAILED ]
