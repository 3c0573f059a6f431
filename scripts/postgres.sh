#!/usr/bin/env bash
# One PostgreSQL cluster of Debian's server, on loopback only, with everything under one folder: the
# one place that creates, starts and stops a cluster (scripts/stack.sh and the SQL-source test fixture
# use it). Run as root, the server runs as the `postgres` user (initdb and postgres refuse root).
#
#   bash scripts/postgres.sh init DIR [DATABASE...]  # cluster in DIR/data, role + databases; leaves it running
#   bash scripts/postgres.sh start DIR [PORT]        # starts it (a running one is reused); prints its port
#   bash scripts/postgres.sh stop DIR                # stops it; leaves no server, socket or postmaster.pid
#   bash scripts/postgres.sh port DIR                # the port it listens on (fails when not running)
#   bash scripts/postgres.sh status DIR              # exit 0 when running
#
# DIR holds data/ (the cluster), socket/ (its only Unix socket), server.log, and pgpass: one line
# "127.0.0.1:*:*:ROLE:PASSWORD", 0600, the password of the login role (POSTGRES_ROLE, default
# `retrain`, not a superuser) that owns each DATABASE. libpq finds it through PGPASSFILE, so the
# password is in no URL, command line, environment variable or log. The superuser logs in by peer on
# the socket only. PG_BIN picks the server (default: the newest under /usr/lib/postgresql).
set -euo pipefail

usage() { echo "usage: $0 init|start|stop|port|status DIR [...]" >&2; exit 2; }
(($# >= 2)) || usage
command=$1
dir=$(realpath -m "$2")
shift 2

pg_bin=${PG_BIN:-$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)}
data=$dir/data
socket=$dir/socket
role=${POSTGRES_ROLE:-retrain}

as_owner() {  # a PostgreSQL program as the cluster's owner
  if ((EUID == 0)); then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

running() { [[ -f $data/PG_VERSION ]] && as_owner "$pg_bin/pg_ctl" status -D "$data" >/dev/null 2>&1; }
port() { sed -n 4p "$data/postmaster.pid"; }  # postmaster.pid: pid, data dir, start time, port, ...

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  if running; then
    port
    return
  fi
  local port=${1:-$(free_port)}
  if ! as_owner "$pg_bin/pg_ctl" start -D "$data" -l "$dir/server.log" -w -t 60 -o "-p $port" >/dev/null; then
    echo "postgres.sh: the server did not start on 127.0.0.1:$port; see $dir/server.log" >&2
    exit 1
  fi
  echo "$port"
}

stop() {  # pg_ctl removes postmaster.pid, the socket and its lock file; what a killed server left is tidied
  if running; then
    as_owner "$pg_bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null 2>&1 || true
  fi
  if [[ -f $data/postmaster.pid ]] && ! running; then
    rm -f "$data/postmaster.pid" "$socket"/.s.PGSQL.*
  fi
}

init() {  # databases...
  if [[ -f $data/PG_VERSION ]]; then
    return
  fi
  if [[ ! -x $pg_bin/initdb ]]; then
    echo "postgres.sh: no PostgreSQL server in ${pg_bin:-/usr/lib/postgresql/*/bin} (PG_BIN); bash scripts/setup.sh --stack (or --dev) installs Debian's postgresql" >&2
    exit 1
  fi
  if ((${#socket} + 18 > 107)); then  # sun_path holds 107 bytes: <dir>/.s.PGSQL.<port>
    echo "postgres.sh: $socket/.s.PGSQL.<port> is longer than a Unix socket path may be (107 bytes); use a shorter DIR" >&2
    exit 1
  fi
  (umask 077 && mkdir -p "$dir")
  if ((EUID == 0)); then
    chown postgres: "$dir"
    if ! as_owner test -w "$dir"; then
      echo "postgres.sh: the postgres user cannot write $dir; every folder above it must be searchable by others (chmod o+x)" >&2
      exit 1
    fi
  fi
  as_owner "$pg_bin/initdb" -D "$data" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { echo "postgres.sh: initdb failed; see $dir/initdb.log" >&2; exit 1; }
  printf "\n# scripts/postgres.sh: loopback and a socket in this folder only\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nunix_socket_permissions = 0700\npassword_encryption = scram-sha-256\n" \
    "$socket" | as_owner tee -a "$data/postgresql.conf" >/dev/null
  as_owner mkdir -m 700 "$socket"
  local password statements database
  password=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
  (umask 077 && printf '127.0.0.1:*:*:%s:%s\n' "$role" "$password" >"$dir/pgpass")
  start >/dev/null
  # psql reads the password on its standard input, not its command line; the server stores a SCRAM
  # hash, and log_min_error_statement keeps a failing statement out of the server log.
  statements=$(printf "SET log_min_error_statement = panic;\nCREATE ROLE %s LOGIN PASSWORD '%s';\n" "$role" "$password")
  for database in "$@"; do
    statements+=$(printf "\nCREATE DATABASE %s OWNER %s;" "$database" "$role")
  done
  echo "$statements" | as_owner "$pg_bin/psql" -h "$socket" -p "$(port)" -d postgres -v ON_ERROR_STOP=1 -q -o /dev/null \
    >"$dir/init.log" 2>&1 \
    || { echo "postgres.sh: creating the role and the databases failed; see $dir/init.log" >&2; stop; exit 1; }
}

case $command in
  init) init "$@" ;;
  start) start "$@" ;;
  stop) stop ;;
  port) running && port ;;
  status) running ;;
  *) usage ;;
esac
